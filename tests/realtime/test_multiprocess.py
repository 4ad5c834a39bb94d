"""Two real `pigeon serve` processes on PostgreSQL and Redis deliver to each other's sockets.

Slow by nature (two servers start), so the whole story runs on one pair of processes, in
order: cross-process delivery and presence, the switch, then killing one process mid-stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.support import pg

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(not (POSTGRES_URL and REDIS_URL), reason="needs PostgreSQL and Redis"),
]

PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Proc:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "pigeon.cli", "serve", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, token: str) -> str:
        return f"ws://127.0.0.1:{self.port}/api/v1/ws?token={token}"

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    assert POSTGRES_URL and REDIS_URL
    tmp = tmp_path_factory.mktemp("cluster")
    names = pg.create_databases(POSTGRES_URL, f"pigeon_mp_{uuid.uuid4().hex[:8]}")
    env = {
        **os.environ,
        "PIGEON_DATABASE_URL": pg.async_url(POSTGRES_URL, names[0]),
        "PIGEON_MESSAGING_DATABASE_URL": pg.async_url(POSTGRES_URL, names[1]),
        "PIGEON_REDIS_URL": REDIS_URL,
        "PIGEON_REDIS_PREFIX": f"pigeon-test-{uuid.uuid4().hex}",
        "PIGEON_SECRET_KEY": uuid.uuid4().hex * 2,
        "PIGEON_DATA_DIR": str(tmp / "data"),
        "PIGEON_RATE_LIMITS_ENABLED": "false",
        "PIGEON_REGISTRATION": "open",
        "PIGEON_PASSWORD_HASH_TIME_COST": "1",
        "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
        "PIGEON_LOG_LEVEL": "warning",
    }
    procs: list[Proc] = []
    try:
        cli = [sys.executable, "-m", "pigeon.cli"]
        subprocess.run(
            [
                *cli,
                "admin",
                "create",
                "--email",
                "boss@example.com",
                "--username",
                "boss",
                "--password",
                PASSWORD,
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        subprocess.run([*cli, "messaging", "enable"], env=env, check=True, capture_output=True)
        procs = [Proc(env, tmp / "a.log"), Proc(env, tmp / "b.log")]
        for proc in procs:
            for _ in range(300):
                try:
                    if httpx.get(proc.http + "/readyz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert proc.popen.poll() is None, (tmp / "a.log").read_text()[-2000:]
                time.sleep(0.1)
            else:
                raise AssertionError("a server did not become ready")
        a, b = procs
        tokens = {}
        with httpx.Client(base_url=a.http, timeout=10) as http:
            boss = http.post("/api/v1/auth/login", json={"login": "boss", "password": PASSWORD})
            tokens["boss"] = boss.json()["access_token"]
            for name in ("alice", "bob"):
                r = http.post(
                    "/api/v1/auth/register",
                    json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
                )
                assert r.status_code == 201, r.text
                tokens[name] = r.json()["access_token"]
                tokens[name + "_id"] = r.json()["user"]["id"]
            r = http.patch(
                f"/api/v1/admin/users/{tokens['alice_id']}",
                json={"tier": "privileged"},
                headers={"Authorization": f"Bearer {tokens['boss']}"},
            )
            assert r.status_code == 200, r.text
            r = http.post(
                "/api/v1/conversations",
                json={"participant_ids": [tokens["bob_id"]]},
                headers={"Authorization": f"Bearer {tokens['alice']}"},
            )
            assert r.status_code == 201, r.text
            tokens["conv"] = r.json()["id"]
            r = http.post(  # bob accepts: presence and typing pass once it is no request
                f"/api/v1/conversations/{tokens['conv']}/accept",
                headers={"Authorization": f"Bearer {tokens['bob']}"},
            )
            assert r.status_code == 200, r.text
        yield {"a": a, "b": b, "t": tokens}
    finally:
        for proc in procs:
            proc.stop()
        pg.drop_databases(POSTGRES_URL, names)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def next_of(ws: Any, type: str, timeout: float = 5.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            frame = orjson.loads(await ws.recv())
            if frame["type"] == type:
                return frame


async def test_a_message_sent_through_one_process_reaches_a_socket_on_the_other(cluster):
    a, b, t = cluster["a"], cluster["b"], cluster["t"]
    async with connect(b.ws(t["bob"])) as bob, httpx.AsyncClient(base_url=a.http) as http:
        assert (await next_of(bob, "hello"))["data"]["user_id"] == t["bob_id"]
        async with connect(a.ws(t["alice"])) as alice:
            await next_of(alice, "hello")
            online = await next_of(bob, "presence")  # alice is on the other process
            assert online["data"] == {
                **online["data"],
                "user_id": t["alice_id"],
                "status": "online",
            }
            r = await http.post(
                f"/api/v1/conversations/{t['conv']}/messages",
                json={"body": "across processes"},
                headers=bearer(t["alice"]),
            )
            assert r.status_code == 201
            got = await next_of(bob, "message.new")
            assert got["id"] == r.json()["id"] and got["data"]["body"] == "across processes"
            await bob.send(orjson.dumps({"type": "typing", "conversation_id": t["conv"]}).decode())
            typing = await next_of(alice, "typing")
            assert typing["data"]["user_id"] == t["bob_id"]
        offline = await next_of(bob, "presence")
        assert offline["data"]["status"] == "offline" and offline["data"]["last_seen_at"]


async def test_switching_off_through_one_process_closes_sockets_on_both(cluster):
    a, b, t = cluster["a"], cluster["b"], cluster["t"]
    boss = bearer(t["boss"])
    async with connect(a.ws(t["alice"])) as alice, connect(b.ws(t["bob"])) as bob:
        await next_of(alice, "hello")
        await next_of(bob, "hello")
        async with httpx.AsyncClient(base_url=a.http) as http:
            r = await http.put(
                "/api/v1/admin/settings/messaging", json={"enabled": False}, headers=boss
            )
            assert r.status_code == 200
            try:
                for ws in (alice, bob):
                    await next_of(ws, "messaging.disabled")
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(ws.recv(), 5)
                    assert closed.value.rcvd.code == 4403
                async with connect(b.ws(t["bob"])) as late:
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(late.recv(), 5)
                    assert closed.value.rcvd.code == 4403
            finally:
                r = await http.put(
                    "/api/v1/admin/settings/messaging", json={"enabled": True}, headers=boss
                )
                assert r.status_code == 200


async def test_killing_a_process_loses_no_acknowledged_message(cluster):
    a, b, t = cluster["a"], cluster["b"], cluster["t"]
    acked: list[int] = []
    seen: list[int] = []
    killed = asyncio.Event()

    async def sender() -> None:
        async with httpx.AsyncClient(base_url=a.http, timeout=10) as http:
            for i in range(120):
                r = await http.post(
                    f"/api/v1/conversations/{t['conv']}/messages",
                    json={"body": f"n{i}", "client_msg_id": f"kill-{i}"},
                    headers=bearer(t["alice"]),
                )
                assert r.status_code == 201, r.text
                acked.append(r.json()["id"])
                if i == 40:
                    b.stop(signal.SIGKILL)  # mid-stream, without warning
                    killed.set()
                await asyncio.sleep(0.005)

    async def reader() -> None:
        url = b.ws(t["bob"])
        resume_from = None
        while True:
            try:
                async with connect(url) as ws:
                    hello = await next_of(ws, "hello")
                    if resume_from is None:
                        resume_from = hello["data"]["latest_message_id"]
                        started.set()
                    else:
                        await ws.send(
                            orjson.dumps(
                                {"type": "resume", "last_message_id": resume_from}
                            ).decode()
                        )
                    while True:
                        frame = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
                        if frame["type"] == "message.new":
                            seen.append(frame["id"])
                            resume_from = max(resume_from, frame["id"])
                            if done.is_set() and set(acked) <= set(seen):
                                return
            except (ConnectionClosed, OSError, TimeoutError):
                url = a.ws(t["bob"])  # the other process
                await asyncio.sleep(0.05)

    started, done = asyncio.Event(), asyncio.Event()
    read = asyncio.create_task(reader())
    await asyncio.wait_for(started.wait(), 10)
    await sender()
    done.set()
    assert killed.is_set()
    # a message after the last one, so the reader wakes up and checks
    async with httpx.AsyncClient(base_url=a.http) as http:
        r = await http.post(
            f"/api/v1/conversations/{t['conv']}/messages",
            json={"body": "the end"},
            headers=bearer(t["alice"]),
        )
        acked.append(r.json()["id"])
    await asyncio.wait_for(read, 20)
    assert len(seen) == len(set(seen)), "duplicates"
    assert set(acked) <= set(seen), f"lost: {sorted(set(acked) - set(seen))}"

    # a graceful stop says "going away", so clients know to reconnect
    async with connect(a.ws(t["bob"])) as ws:
        await next_of(ws, "hello")
        a.popen.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
