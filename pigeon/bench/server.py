"""The server under test: its data, its process, and what it says about itself."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from pigeon.accounts import directory
from pigeon.bench.clients import RawHTTP

SECRET = "bench-secret-key-that-is-long-enough-for-hs256-signing"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: embedded databases unless `extra` names others (e.g.
    PIGEON_DATABASE_URL, PIGEON_MESSAGING_DATABASE_URL, PIGEON_REDIS_URL for a cluster)."""
    env = {
        **os.environ,
        "PIGEON_DATA_DIR": str(data),
        "PIGEON_SECRET_KEY": SECRET,
        "PIGEON_RATE_LIMITS_ENABLED": "false",
        "PIGEON_LOG_LEVEL": "warning",
        "PIGEON_ACCESS_TOKEN_MINUTES": "600",
    }
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        env.pop(var, None)
    env.update(extra or {})
    return env


async def prepare(
    data: Path,
    users: int,
    conversations: int,
    *,
    database_url: str | None = None,
    messaging_database_url: str | None = None,
) -> tuple[list[int], list[str], list[tuple[int, int, int]]]:
    """Members (privileged, so they may start conversations), tokens, direct conversations;
    in the embedded SQLite files under `data` unless database URLs are given."""
    from pigeon.accounts import service as accounts
    from pigeon.admin import service as admin
    from pigeon.core import migrate, security
    from pigeon.core.db import Databases
    from pigeon.core.events import InProcessBroker
    from pigeon.core.runtime import Runtime
    from pigeon.media.storage import open_store
    from pigeon.messaging import service as messaging
    from pigeon.messaging.context import Ctx
    from pigeon.messaging.send_tx import make_send_path
    from pigeon.settings import Settings

    settings = Settings(
        data_dir=data,
        secret_key=SECRET,
        database_url=database_url,
        messaging_database_url=messaging_database_url,
        redis_url=None,
        password_hash_time_cost=1,  # throwaway members
        password_hash_memory_kib=64,
        _env_file=None,
    )
    dbs = Databases(settings.app_db_url, settings.messaging_db_url)
    rt = Runtime(settings, dbs, InProcessBroker(), open_store(settings))
    sends = make_send_path(dbs.messaging)
    try:
        await migrate.upgrade(dbs.app)
        await migrate.upgrade(dbs.messaging)
        ids: list[int] = []
        async with rt.uow_scope() as uow:
            for i in range(users):
                user = await accounts.create_user(
                    uow,
                    email=f"b{i}@bench.pigeon.test",
                    username=f"bench{i}",
                    password="bench-password",
                    passwords=rt.passwords,
                    tier="privileged",
                )
                ids.append(user.id)
        async with rt.uow_scope() as uow:
            await admin.set_messaging(rt, uow, True, actor_id=None, actor_label="bench")
        people = await directory.principals(rt, ids)
        convs = []
        for c in range(conversations):
            a, b = ids[2 * c], ids[2 * c + 1]
            async with rt.uow_scope() as uow:
                ctx = Ctx(rt=rt, sends=sends, viewer=people[a], uow=uow)
                conv_id, _ = await messaging.start_direct(ctx, b)
            convs.append((conv_id, a, b))
        tokens = [
            security.create_access_token(
                SECRET,
                user_id=uid,
                minutes=600,
                issued_at=rt.clock.now(),
                extra={"fid": security.new_family_id()},
            )
            for uid in ids
        ]
        return ids, tokens, convs
    finally:
        sends.close()
        await rt.close()
        await dbs.dispose()


def start_server(
    data: Path, port: int, cpu: str | None, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pigeon.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    return subprocess.Popen(cmd, env=server_env(data, extra_env))


async def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        with contextlib.suppress(OSError):
            http = await RawHTTP.open(port)
            status, _ = await http.request("GET", "/readyz")
            http.close()
            if status == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not become ready")


async def server_delivery_quantiles(port: int) -> dict[float, float]:
    """From the server's own histogram: commit -> hand-off to the socket, as bucket bounds (ms)."""
    http = await RawHTTP.open(port)
    try:
        _, text = await http.request("GET", "/metrics")
    finally:
        http.close()
    buckets: list[tuple[float, float]] = []
    for line in text.decode().splitlines():
        if line.startswith("pigeon_delivery_latency_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0
    out = {}
    for q in (0.5, 0.99):
        for bound, count in buckets:
            if total and count >= q * total:
                out[q] = round(bound * 1000, 2) if bound != float("inf") else float("inf")
                break
    return out


class ServerProbe:
    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak_rss = 0

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return float(t.user + t.system)

    def rss(self) -> int:
        value = int(self.proc.memory_info().rss)
        self.peak_rss = max(self.peak_rss, value)
        return value
