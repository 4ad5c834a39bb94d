"""Sign-in latency, what a burst of sign-ins does to live delivery, and the server's memory.

Starts `pigeon serve` on the embedded default with its own password hashing settings (the
defaults unless PIGEON_PASSWORD_HASH_* are set), on one core, and from the other core:

  1. registers 21 members through the API (each one a real argon2id hash);
  2. signs in one at a time, 50 times: the p50 and p99 of a sign-in;
  3. for 10 s, 20 members signing in over and over at once while one member sends to another
     at 50 msg/s over HTTP and the recipient's WebSocket times each delivery: sign-in p50
     under that load, and send→receive p50 / p99;
  4. the server's RSS before, during (sampled every 20 ms: the peak) and after.

    .venv/bin/python benchmarks/sign_in.py [--server-cpu 0 --client-cpu 1] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from pigeon.bench.clients import RawHTTP
from pigeon.bench.scenarios import pct
from pigeon.bench.server import ServerProbe, free_port, server_env, wait_ready

PASSWORD = "a long enough benchmark passphrase"


async def call(http: RawHTTP, method: str, path: str, body: object, token: str | None = None):  # type: ignore[no-untyped-def]
    status, raw = await http.request(method, path, orjson.dumps(body), token)
    return status, orjson.loads(raw) if raw else None


async def sign_in(port: int, name: str) -> float:
    http = await RawHTTP.open(port)
    try:
        started = time.perf_counter()
        status, _ = await call(
            http, "POST", "/api/v1/auth/login", {"login": name, "password": PASSWORD}
        )
        if status != 200:
            raise RuntimeError(f"sign-in answered {status}")
        return (time.perf_counter() - started) * 1000
    finally:
        http.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    os.sched_setaffinity(0, {int(args.client_cpu)})
    tmp = Path(tempfile.mkdtemp(prefix="pigeon-signin-"))
    data = tmp / "data"
    env = server_env(data)
    env["PIGEON_REGISTRATION"] = "open"
    for name, value in os.environ.items():  # the hashing settings under test, if given
        if name.startswith("PIGEON_PASSWORD_HASH_"):
            env[name] = value
    subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "db", "upgrade"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    port = free_port()
    cmd = [
        "taskset",
        "-c",
        args.server_cpu,
        sys.executable,
        "-m",
        "pigeon.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(cmd, env=env)
    try:
        await wait_ready(port, server)
        probe = ServerProbe(server.pid)
        rss_start = probe.rss()
        http = await RawHTTP.open(port)
        tokens, ids = [], []
        for i in range(21):
            status, body = await call(
                http,
                "POST",
                "/api/v1/auth/register",
                {"email": f"m{i}@example.org", "username": f"member{i}", "password": PASSWORD},
            )
            assert status == 201, body
            tokens.append(body["access_token"])
            ids.append(body["user"]["id"])
        subprocess.run(
            [sys.executable, "-m", "pigeon.cli", "users", "set-tier", "member0", "privileged"],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        subprocess.run(
            [sys.executable, "-m", "pigeon.cli", "messaging", "enable"],
            env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        await asyncio.sleep(1.2)  # the server's switch cache lapses
        # the commands can take longer than the server keeps an idle connection: a new one
        http.close()
        http = await RawHTTP.open(port)
        status, conv = await call(
            http, "POST", "/api/v1/conversations", {"participant_ids": [ids[1]]}, tokens[0]
        )
        assert status in (200, 201), conv
        await call(http, "POST", f"/api/v1/conversations/{conv['id']}/accept", {}, tokens[1])

        quiet = [await sign_in(port, f"member{i % 20 + 1}") for i in range(50)]

        from websockets.asyncio.client import connect

        ws = await connect(
            f"ws://127.0.0.1:{port}/api/v1/ws?token={tokens[1]}", compression=None, max_queue=None
        )
        await ws.recv()  # hello
        sent: dict[str, float] = {}
        delivery: list[float] = []

        async def receive() -> None:
            async for raw in ws:
                frame = orjson.loads(raw)
                if frame["type"] == "message.new":
                    at = sent.get(frame["data"].get("client_msg_id") or "")
                    if at is not None:
                        delivery.append((time.perf_counter() - at) * 1000)

        reader = asyncio.ensure_future(receive())
        stop = time.perf_counter() + args.seconds
        busy: list[float] = []
        peak = [rss_start]

        async def sampler() -> None:
            while time.perf_counter() < stop + 0.5:
                peak[0] = max(peak[0], probe.rss())
                await asyncio.sleep(0.02)

        async def signer(k: int) -> None:
            while time.perf_counter() < stop:
                busy.append(await sign_in(port, f"member{k + 1}"))

        async def sender() -> None:
            n = 0
            while (now := time.perf_counter()) < stop:
                cmid = f"d{n}"
                sent[cmid] = time.perf_counter()
                status, _ = await call(
                    http, "POST", f"/api/v1/conversations/{conv['id']}/messages",
                    {"body": f"delivery during sign-ins {n}", "client_msg_id": cmid}, tokens[0],
                )  # fmt: skip
                assert status == 201
                n += 1
                await asyncio.sleep(max(0.0, now + 1 / 50 - time.perf_counter()))

        await asyncio.gather(sampler(), sender(), *(signer(k) for k in range(20)))
        await asyncio.sleep(0.5)
        reader.cancel()
        await ws.close()
        rss_after = probe.rss()
        quiet_p = f"p50 {pct(quiet, 0.5):.1f} ms, p99 {pct(quiet, 0.99):.1f} ms"
        print(f"sign-in, one at a time: {quiet_p} (n={len(quiet)})")
        rate = len(busy) / args.seconds
        busy_p = f"p50 {pct(busy, 0.5):.0f} ms, p99 {pct(busy, 0.99):.0f} ms"
        live = f"p50 {pct(delivery, 0.5):.2f} ms, p99 {pct(delivery, 0.99):.2f} ms"
        print(
            f"20 signing in at once: {rate:.1f} sign-ins/s, {busy_p}; meanwhile 50 msg/s "
            f"send->receive {live} (n={len(delivery)} of {len(sent)})"
        )
        print(
            f"server RSS: {rss_start / 2**20:.0f} MiB at start, peak {peak[0] / 2**20:.0f} MiB, "
            f"{rss_after / 2**20:.0f} MiB after"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
