"""`pigeon bench`: live delivery under load, measured from the outside.

Starts `pigeon serve` on the embedded default (SQLite files in a temporary folder, the
in-process broker, rate limits off) pinned to one core, prepares members and direct
conversations, then from this process (pinned to another core) opens WebSocket clients and
sends over HTTP. It reports send->receive latency (from just before the HTTP request to the
moment the recipient's socket yields the `message.new`), lost and duplicated deliveries, send
throughput, and the server's RSS and CPU. Scenarios:

  latency     100 clients, 50 conversations, 50 msg/s
  load        1,000 clients, 500 conversations, 500 msg/s
  throughput  16 senders as fast as they can, each in its own conversation
  idle        10,000 idle connections held open; server RSS
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

SECRET = "bench-secret-key-that-is-long-enough-for-hs256-signing"


@dataclasses.dataclass
class Scenario:
    name: str
    clients: int = 100
    conversations: int = 50
    rate: float = 50.0  # sends per second; 0 = closed loop with `senders`
    senders: int = 0
    duration: float = 20.0
    idle: int = 0


SCENARIOS = {
    "latency": Scenario("latency", clients=100, conversations=50, rate=50),
    "load": Scenario("load", clients=1000, conversations=500, rate=500),
    "throughput": Scenario(
        "throughput", clients=32, conversations=16, rate=0, senders=16, duration=10
    ),
    "idle": Scenario("idle", clients=0, conversations=0, rate=0, idle=10_000, duration=5),
}


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the server and its data ---


def server_env(data: Path) -> dict[str, str]:
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
    return env


async def prepare(
    data: Path, users: int, conversations: int
) -> tuple[list[int], list[str], list[tuple[int, int, int]]]:
    """Members (privileged, so they may start conversations), tokens, direct conversations."""
    from pigeon.accounts import service as accounts
    from pigeon.admin import service as admin
    from pigeon.core import migrate, security
    from pigeon.core.db import Databases
    from pigeon.messaging import service as messaging
    from pigeon.settings import Settings

    settings = Settings(
        data_dir=data,
        secret_key=SECRET,
        database_url=None,
        messaging_database_url=None,
        redis_url=None,
        _env_file=None,
    )  # type: ignore[call-arg]
    security.configure_hashing(time_cost=1, memory_kib=64)  # throwaway members
    dbs = Databases(settings.app_db_url, settings.messaging_db_url)
    try:
        await migrate.upgrade(dbs.app)
        await migrate.upgrade(dbs.messaging)
        ids: list[int] = []
        async with dbs.app.write() as session:
            for i in range(users):
                user = await accounts.create_user(
                    session,
                    email=f"b{i}@bench.pigeon.test",
                    username=f"bench{i}",
                    password="bench-password",
                    tier="privileged",
                )
                ids.append(user.id)
        await admin.set_messaging(dbs, True, actor_id=None, actor_label="bench")
        async with dbs.app.read() as session:
            people = await accounts.principals(session, ids)
        convs = []
        for c in range(conversations):
            a, b = ids[2 * c], ids[2 * c + 1]
            ctx = messaging.Ctx(dbs=dbs, settings=settings, viewer=people[a])
            conv_id, _ = await messaging.start_direct(ctx, b)
            convs.append((conv_id, a, b))
        tokens = [security.create_access_token(SECRET, user_id=uid, minutes=600) for uid in ids]
        return ids, tokens, convs
    finally:
        await dbs.dispose()


def start_server(data: Path, port: int, cpu: str | None) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "pigeon.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    return subprocess.Popen(cmd, env=server_env(data))


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


# --- a lean HTTP/1.1 keep-alive client, so the load generator is not the bottleneck ---


class RawHTTP:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawHTTP:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, body: bytes = b"", token: str | None = None
    ) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length) if length else b""

    def close(self) -> None:
        self.writer.close()


# --- live clients ---


class Tally:
    def __init__(self) -> None:
        self.sent: dict[int, tuple[float, int]] = {}  # seq -> (t0, recipient)
        self.acked: set[int] = set()
        self.received: set[int] = set()
        self.latencies: list[float] = []
        self.ack_latencies: list[float] = []
        self.duplicates = 0
        self.errors = 0
        self.frames = 0


async def client(
    port: int, user_id: int, token: str, tally: Tally, ready: asyncio.Event, opened: list[int]
) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(
        f"ws://127.0.0.1:{port}/api/v1/ws?token={token}",
        compression=None,
        ping_interval=None,
        max_queue=None,
    )
    await ws.recv()  # hello
    opened[0] += 1
    if opened[0] == opened[1]:
        ready.set()

    async def read() -> None:
        seen: set[int] = set()
        loads, now = orjson.loads, time.perf_counter
        with contextlib.suppress(Exception):
            async for raw in ws:
                tally.frames += 1
                frame = loads(raw)
                if frame["type"] != "message.new":
                    continue
                at = now()
                mid = frame["id"]
                if mid in seen:
                    tally.duplicates += 1
                    continue
                seen.add(mid)
                cmid = frame["data"].get("client_msg_id") or ""
                if cmid.startswith("b"):
                    seq = int(cmid[1:])
                    t0, recipient = tally.sent.get(seq, (0.0, -1))
                    if recipient == user_id:
                        tally.received.add(seq)
                        tally.latencies.append(at - t0)

    return ws, asyncio.ensure_future(read())


async def send_one(
    http: RawHTTP, tally: Tally, seq: int, conv: tuple[int, int, int], tokens: dict[int, str]
) -> None:
    conv_id, a, b = conv
    sender, recipient = (a, b) if seq % 2 == 0 else (b, a)
    body = orjson.dumps({"body": f"bench message {seq}", "client_msg_id": f"b{seq}"})
    t0 = time.perf_counter()
    tally.sent[seq] = (t0, recipient)
    status, _ = await http.request(
        "POST", f"/api/v1/conversations/{conv_id}/messages", body, tokens[sender]
    )
    if status == 201:
        tally.acked.add(seq)
        tally.ack_latencies.append(time.perf_counter() - t0)
    else:
        tally.errors += 1


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


async def run_live(
    sc: Scenario,
    port: int,
    ids: list[int],
    tokens: list[str],
    convs: list[tuple[int, int, int]],
    probe: ServerProbe,
) -> dict[str, Any]:
    tally = Tally()
    by_user = dict(zip(ids, tokens, strict=True))
    ready = asyncio.Event()
    opened = [0, sc.clients]
    sem = asyncio.Semaphore(100)

    async def open_one(i: int) -> Any:
        async with sem:
            return await client(port, ids[i], tokens[i], tally, ready, opened)

    clients = await asyncio.gather(*(open_one(i) for i in range(sc.clients)))
    await asyncio.wait_for(ready.wait(), 60)
    pool_size = sc.senders or 64
    pool: asyncio.Queue[RawHTTP] = asyncio.Queue()
    for _ in range(pool_size):
        pool.put_nowait(await RawHTTP.open(port))

    cpu0, t_start = probe.cpu(), time.perf_counter()
    seq = 0
    if sc.rate > 0:
        total = int(sc.rate * sc.duration)
        pending: set[asyncio.Task[None]] = set()

        async def fire(n: int) -> None:
            http = await pool.get()
            try:
                await send_one(http, tally, n, convs[n % len(convs)], by_user)
            finally:
                pool.put_nowait(http)

        for seq in range(total):
            delay = t_start + seq / sc.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.ensure_future(fire(seq))
            pending.add(task)
            task.add_done_callback(pending.discard)
            if seq % 200 == 0:
                probe.rss()
        await asyncio.gather(*pending)
    else:
        counter = [0]
        stop_at = t_start + sc.duration

        async def loop(k: int) -> None:
            http = await pool.get()
            conv = convs[k % len(convs)]
            while time.perf_counter() < stop_at:
                n = counter[0]
                counter[0] += 1
                await send_one(http, tally, n, conv, by_user)

        await asyncio.gather(*(loop(k) for k in range(sc.senders)))
    elapsed = time.perf_counter() - t_start
    cpu = probe.cpu() - cpu0
    rss = probe.rss()
    # let the last deliveries land
    deadline = time.perf_counter() + 5
    while time.perf_counter() < deadline and not tally.acked <= tally.received:
        await asyncio.sleep(0.05)
    hand_off = await server_delivery_quantiles(port)
    for ws, reader in clients:
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
    while not pool.empty():
        pool.get_nowait().close()
    lat = [x * 1000 for x in tally.latencies]
    ack = [x * 1000 for x in tally.ack_latencies]
    return {
        "scenario": sc.name,
        "clients": sc.clients,
        "conversations": len(convs),
        "target_rate": sc.rate or None,
        "senders": sc.senders or None,
        "sent": len(tally.acked),
        "errors": tally.errors,
        "sends_per_s": round(len(tally.acked) / elapsed, 1),
        "p50_ms": round(pct(lat, 0.50), 2),
        "p95_ms": round(pct(lat, 0.95), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "max_ms": round(max(lat, default=0), 2),
        "ack_p50_ms": round(pct(ack, 0.50), 2),
        "ack_p99_ms": round(pct(ack, 0.99), 2),
        "lost": len(tally.acked - tally.received),
        "duplicated": tally.duplicates,
        "server_commit_to_socket_p50_ms": hand_off.get(0.5),
        "server_commit_to_socket_p99_ms": hand_off.get(0.99),
        "server_cpu_pct": round(100 * cpu / elapsed, 1),
        "server_rss_mib": round(rss / 2**20, 1),
        "server_peak_rss_mib": round(probe.peak_rss / 2**20, 1),
    }


# --- idle connections: a minimal client that only answers pings ---


class IdleSocket(asyncio.Protocol):
    def __init__(self, request: bytes, hello: asyncio.Future[bool]) -> None:
        self.request, self.hello = request, hello
        self.buf = b""
        self.upgraded = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buf[:end]:
                self._done(False)
                return
            self.upgraded, self.buf = True, self.buf[end + 4 :]
        while len(self.buf) >= 2:
            opcode, size, start = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if size == 126:
                if len(self.buf) < 4:
                    return
                size, start = int.from_bytes(self.buf[2:4], "big"), 4
            elif size == 127:
                if len(self.buf) < 10:
                    return
                size, start = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < start + size:
                return
            payload, self.buf = self.buf[start : start + size], self.buf[start + size :]
            if opcode == 0x9:  # ping: answer with a masked pong (zero mask key)
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 0x1:
                self._done(True)
            elif opcode == 0x8:
                self._done(False)

    def _done(self, ok: bool) -> None:
        if not self.hello.done():
            self.hello.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self._done(False)


async def run_idle(
    sc: Scenario, port: int, tokens: list[str], probe: ServerProbe
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    base_rss = probe.rss()
    sem = asyncio.Semaphore(200)
    transports: list[Any] = []

    async def open_one(i: int) -> bool:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /api/v1/ws?token={tokens[i % len(tokens)]} HTTP/1.1\r\nHost: bench\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        async with sem:
            hello: asyncio.Future[bool] = loop.create_future()
            try:
                transport, _ = await loop.create_connection(
                    lambda: IdleSocket(request, hello), "127.0.0.1", port
                )
            except OSError:
                return False
            transports.append(transport)
            return await asyncio.wait_for(hello, 60)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(open_one(i) for i in range(sc.idle)), return_exceptions=True)
    connect_s = time.perf_counter() - t0
    await asyncio.sleep(sc.duration)  # held open: the server settles
    cpu0 = probe.cpu()
    await asyncio.sleep(2)
    idle_cpu = (probe.cpu() - cpu0) / 2
    rss = probe.rss()
    for transport in transports:
        transport.close()
    return {
        "scenario": sc.name,
        "connections": sum(1 for r in results if r is True),
        "connect_s": round(connect_s, 1),
        "server_rss_mib": round(rss / 2**20, 1),
        "server_rss_before_mib": round(base_rss / 2**20, 1),
        "per_connection_kib": round((rss - base_rss) / max(1, sc.idle) / 1024, 1),
        "server_cpu_pct_idle": round(100 * idle_cpu, 1),
    }


# --- running a scenario end to end ---


async def run(sc: Scenario, *, server_cpu: str | None, data: Path) -> dict[str, Any]:
    users = max(sc.clients, 2 * sc.conversations, 2, min(sc.idle, 1000))
    ids, tokens, convs = await prepare(data, users, sc.conversations)
    port = free_port()
    proc = start_server(data, port, server_cpu)
    try:
        await wait_ready(port, proc)
        print(f"# {sc.name}: server pid {proc.pid} on port {port}", file=sys.stderr, flush=True)
        probe = ServerProbe(proc.pid)
        if sc.idle:
            return await run_idle(sc, port, tokens, probe)
        return await run_live(sc, port, ids, tokens, convs, probe)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(
    names: list[str], *, server_cpu: str | None, client_cpu: str | None, overrides: dict[str, Any]
) -> list[dict[str, Any]]:
    if client_cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in client_cpu.split(",")})
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    results = []
    for name in names:
        sc = dataclasses.replace(
            SCENARIOS[name], **{k: v for k, v in overrides.items() if v is not None}
        )
        with (
            tempfile.TemporaryDirectory(prefix="pigeon-bench-") as tmp,
            asyncio.Runner(loop_factory=loop_factory) as runner,
        ):
            results.append(runner.run(run(sc, server_cpu=server_cpu, data=Path(tmp))))
        print(orjson.dumps(results[-1]).decode(), flush=True)
    return results
