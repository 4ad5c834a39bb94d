"""Latency of a send and of a 50-message history page, and send throughput, over real HTTP.

Starts `pigeon serve` on the embedded default (SQLite files in a temporary data folder, the
in-process broker, rate limits off), makes two members and a conversation, then measures:

  - send latency: sequential POST /conversations/{id}/messages (one client, keep-alive)
  - history latency: GET /conversations/{id}/messages?limit=50
  - send throughput: C concurrent senders (each in its own conversation) for D seconds

    .venv/bin/python benchmarks/api_latency.py [--sends 2000] [--concurrency 16] [--seconds 10]
      [--server-cpu 0 --client-cpu 1]

Figures are medians over the samples; run it a few times and report the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from pigeon.bench.reference import PIGEON_SEND
from pigeon.bench.scenarios import pct
from pigeon.bench.server import free_port

ROOT = Path(__file__).resolve().parent.parent


def start_server(data: Path, port: int, cpu: str | None) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PIGEON_DATA_DIR": str(data),
        "PIGEON_RATE_LIMITS_ENABLED": "false",
        "PIGEON_REGISTRATION": "open",  # it registers its members through the API
        "PIGEON_LOG_LEVEL": "warning",
        "PIGEON_SECRET_KEY": "bench-secret-key-that-is-long-enough-for-hs256",
    }
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "pigeon.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    return subprocess.Popen(cmd, env=env, cwd=ROOT)


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as c:
        for _ in range(300):
            try:
                if (await c.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("server did not start")


async def setup(base: str, pairs: int) -> tuple[list[tuple[dict[str, str], int]], dict[str, str]]:
    """Register members, make the first an admin via the CLI, switch messaging on."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        tokens = []
        for i in range(pairs * 2):
            r = await c.post(
                "/api/v1/auth/register",
                json={
                    "email": f"bench{i}@example.com",
                    "username": f"bench{i}",
                    "password": "benchmark password",
                },
            )
            r.raise_for_status()
            tokens.append((r.json()["access_token"], r.json()["user"]["id"]))
        return tokens, {}


def cli(data: Path, *args: str) -> None:
    env = {**os.environ, "PIGEON_DATA_DIR": str(data)}
    subprocess.run(
        [sys.executable, "-m", "pigeon.cli", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )


WRK_SCRIPT = PIGEON_SEND  # POST a message, each connection in turn for its own member


def wrk_throughput(
    base: str, convs: list[tuple[dict[str, str], int]], seconds: float, cpu: str | None, tmp: Path
) -> str | None:
    """Sends/s measured by wrk (C, so the load generator is not the bottleneck)."""
    if not shutil.which("wrk"):
        return None
    pairs = ", ".join(
        f'{{"{h["Authorization"].removeprefix("Bearer ")}", {conv}}}' for h, conv in convs
    )
    script = tmp / "send.lua"
    script.write_text(WRK_SCRIPT % pairs)
    cmd = ["wrk", "-t1", "-c16", f"-d{int(seconds)}s", "-s", str(script), base]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    rate = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("Requests/sec")), "?")
    errors = next((ln.strip() for ln in out.splitlines() if "Non-2xx" in ln), "0 errors")
    latency = next(
        (ln.split()[1] for ln in out.splitlines() if ln.strip().startswith("Latency")), "?"
    )
    return f"{float(rate):8.0f} sends/s, mean latency {latency}, {errors}"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sends", type=int, default=2000)
    ap.add_argument("--pages", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--server-cpu", default=None)
    ap.add_argument("--client-cpu", default=None)
    args = ap.parse_args()
    if args.client_cpu is not None:
        os.sched_setaffinity(0, {int(args.client_cpu)})

    tmp = Path(tempfile.mkdtemp(prefix="pigeon-bench-"))
    data = tmp / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cli(data, "db", "upgrade")
    server = start_server(data, port, args.server_cpu)
    try:
        await wait_ready(base)
        users, _ = await setup(base, args.concurrency)
        for i in range(0, len(users), 2):
            cli(data, "users", "set-tier", f"bench{i}", "privileged")
        cli(data, "messaging", "enable")
        await asyncio.sleep(1.1)  # let the server's 1 s switch cache lapse
        async with httpx.AsyncClient(base_url=base, timeout=30) as c:
            convs = []
            for i in range(0, len(users), 2):
                (token, _), (_, other) = users[i], users[i + 1]
                h = {"Authorization": f"Bearer {token}"}
                r = await c.post(
                    "/api/v1/conversations", json={"participant_ids": [other]}, headers=h
                )
                r.raise_for_status()
                convs.append((h, r.json()["id"]))

            h, conv = convs[0]
            lat = []
            for i in range(args.sends):
                t = time.perf_counter()
                r = await c.post(
                    f"/api/v1/conversations/{conv}/messages",
                    json={"body": f"message {i}", "client_msg_id": f"s{i}"},
                    headers=h,
                )
                lat.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 201, r.text
            page = []
            for _ in range(args.pages):
                t = time.perf_counter()
                r = await c.get(
                    f"/api/v1/conversations/{conv}/messages", params={"limit": 50}, headers=h
                )
                page.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200 and len(r.json()) == 50

        async def sender(h: dict[str, str], conv: int, stop: float, counts: list[int]) -> None:
            async with httpx.AsyncClient(base_url=base, timeout=30) as c:
                n = 0
                while time.perf_counter() < stop:
                    r = await c.post(
                        f"/api/v1/conversations/{conv}/messages",
                        json={"body": "throughput"},
                        headers=h,
                    )
                    assert r.status_code == 201, r.text
                    n += 1
                counts.append(n)

        import psutil

        proc = psutil.Process(server.pid)
        procs = [proc, *proc.children(recursive=True)]
        cpu_before = sum(sum(p.cpu_times()[:2]) for p in procs)
        counts: list[int] = []
        start = time.perf_counter()
        stop = start + args.seconds
        await asyncio.gather(*(sender(h, cv, stop, counts) for h, cv in convs))
        elapsed = time.perf_counter() - start
        cpu = (sum(sum(p.cpu_times()[:2]) for p in procs) - cpu_before) / elapsed * 100
        rss = sum(p.memory_info().rss for p in procs) / 2**20

        wrk = wrk_throughput(base, convs, args.seconds, args.client_cpu, tmp)
        print(
            f"send latency      median {statistics.median(lat):6.2f} ms   "
            f"p95 {pct(lat, 0.95):6.2f} ms   p99 {pct(lat, 0.99):6.2f} ms   (n={len(lat)})"
        )
        print(
            f"history (50 msgs) median {statistics.median(page):6.2f} ms   "
            f"p95 {pct(page, 0.95):6.2f} ms   (n={len(page)})"
        )
        print(
            f"send throughput   {sum(counts) / elapsed:8.0f} sends/s with "
            f"{len(convs)} concurrent senders over {elapsed:.1f} s "
            f"(server CPU {cpu:.0f}% of one core, RSS {rss:.0f} MiB)"
        )
        if wrk:
            print(f"send throughput   {wrk} (wrk, 16 connections, keep-alive)")
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
