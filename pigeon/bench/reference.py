"""Pigeon beside the bare reference server, in one run: sends/s, server CPU per send, history.

`pigeon bench --reference DIR` and `benchmarks/versus_reference.py` run it.

The reference (`../shared/bench/reference_server.py`: FastAPI + uvicorn, one SQLite insert and
commit per request, no auth, no rules, no fan-out) and `pigeon serve` on the embedded default
are started one after the other, each pinned to the server core, and driven by `wrk` from the
other core:

  - sends: 16 keep-alive connections for D seconds (Pigeon: 16 members each sending in their
    own direct conversation, every recipient connected by WebSocket and counted, so each send
    is authenticated, validated, rule-checked, idempotent, fsynced and delivered live);
  - history: the latest 50 messages of one conversation, with 1 and with 16 connections.

The server's CPU per request comes from /proc before and after each load. Each round runs
both servers; the report gives every round and the medians, and Pigeon ÷ reference.

    .venv/bin/pigeon bench --reference ../shared/bench [--rounds 3] [--duration 15]
    .venv/bin/python benchmarks/versus_reference.py [--rounds 3] [--seconds 15]
        [--server-cpu 0 --client-cpu 1] [--reference-dir ../shared/bench]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pigeon.bench.clients import RawHTTP
from pigeon.bench.server import ServerProbe, free_port, prepare, start_server, wait_ready

DEFAULT_REFERENCE = Path("..") / "shared" / "bench"  # beside a checkout, from its root

PIGEON_SEND = """
local pairs = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #pairs + 1
  local p = pairs[i]
  wrk.headers["Authorization"] = "Bearer " .. p[1]
  return wrk.format(nil, "/api/v1/conversations/" .. p[2] .. "/messages", nil,
                    '{"body": "wrk message from the benchmark"}')
end
"""

PIGEON_HISTORY = """
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer %s"
wrk.path = "/api/v1/conversations/%d/messages?limit=50"
"""

REFERENCE_HISTORY = """
wrk.method = "GET"
wrk.path = "/history?conv=wrk%7Cpeer&limit=50"
"""


@dataclass
class Load:
    requests: int
    seconds: float
    non_2xx: int
    p50_ms: float
    p99_ms: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / max(self.requests, 1)


@dataclass
class Round:
    sends: Load
    history_1: Load
    history_16: Load
    lost: int = 0
    duplicated: int = 0
    rss_mib: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def wrk(
    base: str, script: str, connections: int, seconds: int, cpu: str | None, probe: ServerProbe
) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name, base]
    if cpu is not None and shutil.which("taskset"):
        cmd = ["taskset", "-c", cpu, *cmd]
    cpu0 = probe.cpu()
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
    out = (await proc.communicate())[0].decode()
    cpu1 = probe.cpu()
    os.unlink(f.name)
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if not done:
        raise RuntimeError(f"wrk said:\n{out}")
    elapsed = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return Load(
        requests=int(done.group(1)),
        seconds=elapsed,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
        cpu_s=cpu1 - cpu0,
    )


async def run_reference(ref_dir: Path, args: argparse.Namespace) -> Round:
    tmp = Path(tempfile.mkdtemp(prefix="pigeon-ref-"))
    port = free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(ref_dir), "reference_server:app",
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    if args.server_cpu is not None:
        cmd = ["taskset", "-c", args.server_cpu, *cmd]
    server = subprocess.Popen(cmd, env={**os.environ, "REFERENCE_DB": str(tmp / "ref.db")})
    try:
        for _ in range(100):
            try:
                http = await RawHTTP.open(port)
                http.close()
                break
            except OSError:
                await asyncio.sleep(0.1)
        probe = ServerProbe(server.pid)
        base = f"http://127.0.0.1:{port}"
        script = (ref_dir / "wrk_insert.lua").read_text()
        sends = await wrk(base, script, 16, args.seconds, args.client_cpu, probe)
        h1 = await wrk(base, REFERENCE_HISTORY, 1, args.history_seconds, args.client_cpu, probe)
        h16 = await wrk(base, REFERENCE_HISTORY, 16, args.history_seconds, args.client_cpu, probe)
        return Round(sends, h1, h16, rss_mib=probe.rss() / 2**20)
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


async def listen(
    port: int, token: str, counts: dict[int, int], dupes: list[int]
) -> tuple[Any, asyncio.Task[None]]:
    from websockets.asyncio.client import connect

    ws = await connect(
        f"ws://127.0.0.1:{port}/api/v1/ws?token={token}",
        compression=None,
        ping_interval=None,
        max_queue=None,
    )
    await ws.recv()  # hello

    async def read() -> None:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame["type"] == "message.new":
                mid = frame["id"]
                counts[mid] = counts.get(mid, 0) + 1
                if counts[mid] > 1:
                    dupes[0] += 1

    task = asyncio.ensure_future(read())
    return ws, task


async def run_pigeon(args: argparse.Namespace) -> Round:
    tmp = Path(tempfile.mkdtemp(prefix="pigeon-vs-"))
    data = tmp / "data"
    ids, tokens, convs = await prepare(data, 32, 16)
    by_id = dict(zip(ids, tokens, strict=True))
    port = free_port()
    server = start_server(data, port, args.server_cpu)
    try:
        await wait_ready(port, server)
        probe = ServerProbe(server.pid)
        base = f"http://127.0.0.1:{port}"
        counts: dict[int, int] = {}
        dupes = [0]
        listeners = [await listen(port, by_id[b], counts, dupes) for _, _, b in convs]
        pairs = ", ".join(f'{{"{by_id[a]}", {conv}}}' for conv, a, _ in convs)
        sends = await wrk(base, PIGEON_SEND % pairs, 16, args.seconds, args.client_cpu, probe)
        await asyncio.sleep(1.0)  # the last deliveries
        history = PIGEON_HISTORY % (by_id[convs[0][1]], convs[0][0])
        h1 = await wrk(base, history, 1, args.history_seconds, args.client_cpu, probe)
        h16 = await wrk(base, history, 16, args.history_seconds, args.client_cpu, probe)
        for ws, task in listeners:
            task.cancel()
            await ws.close()
        with sqlite3.connect(data / "messages.db") as db:  # every send that was stored
            stored = db.execute("SELECT count(*) FROM message").fetchone()[0]
        return Round(
            sends,
            h1,
            h16,
            lost=stored - len(counts),
            duplicated=dupes[0],
            rss_mib=probe.rss() / 2**20,
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


def line(name: str, ref: list[float], pig: list[float], unit: str, higher_better: bool) -> str:
    r, p = statistics.median(ref), statistics.median(pig)
    ratio = p / r if r else float("nan")
    each = " / ".join(f"{a:.3g}|{b:.3g}" for a, b in zip(ref, pig, strict=True))
    better = "higher is better" if higher_better else "lower is better"
    return (
        f"{name:<28} reference {r:9.3f} {unit:<8} pigeon {p:9.3f} {unit:<8} "
        f"ratio {ratio:5.2f} ({better}; rounds ref|pigeon: {each})"
    )


async def compare(
    *,
    rounds: int = 3,
    seconds: int = 15,
    history_seconds: int = 8,
    server_cpu: str | None = "0",
    client_cpu: str | None = "1",
    reference_dir: Path = DEFAULT_REFERENCE,
    only: str | None = None,
) -> None:
    """Each round runs the reference, then Pigeon; then the medians and Pigeon ÷ reference."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian's wrk package)")
    if not (reference_dir / "reference_server.py").exists():
        raise SystemExit(f"no reference_server.py in {reference_dir}")
    if client_cpu is not None:
        os.sched_setaffinity(0, {int(client_cpu)})
    args = argparse.Namespace(
        seconds=seconds, history_seconds=history_seconds, server_cpu=server_cpu,
        client_cpu=client_cpu,
    )  # fmt: skip
    refs: list[Round] = []
    pigs: list[Round] = []
    for n in range(rounds):
        if only != "pigeon":
            refs.append(await run_reference(reference_dir, args))
            r = refs[-1]
            print(
                f"round {n + 1} reference: {r.sends.rate:.0f} sends/s, "
                f"{r.sends.cpu_ms:.3f} ms CPU/send, history p50 {r.history_1.p50_ms:.2f} ms "
                f"(1 conn) {r.history_16.p50_ms:.2f} ms (16), RSS {r.rss_mib:.0f} MiB",
                flush=True,
            )
        if only != "reference":
            pigs.append(await run_pigeon(args))
            p = pigs[-1]
            print(
                f"round {n + 1} pigeon:    {p.sends.rate:.0f} sends/s "
                f"({p.sends.non_2xx} non-2xx), {p.sends.cpu_ms:.3f} ms CPU/send, "
                f"history p50 {p.history_1.p50_ms:.2f} ms (1 conn) "
                f"{p.history_16.p50_ms:.2f} ms (16), RSS {p.rss_mib:.0f} MiB, "
                f"lost {p.lost}, duplicated {p.duplicated}",
                flush=True,
            )
    if not refs or not pigs:
        return
    print()
    figures: list[tuple[str, Any, str, bool]] = [
        ("sends/s (16 conns)", lambda r: r.sends.rate, "/s", True),
        ("server CPU per send", lambda r: r.sends.cpu_ms, "ms", False),
        ("history p50, 1 conn", lambda r: r.history_1.p50_ms, "ms", False),
        ("history p50, 16 conns", lambda r: r.history_16.p50_ms, "ms", False),
        ("history CPU per page", lambda r: r.history_16.cpu_ms, "ms", False),
        ("RSS after", lambda r: r.rss_mib, "MiB", False),
    ]
    for name, of, unit, higher in figures:
        print(line(name, [of(r) for r in refs], [of(p) for p in pigs], unit, higher))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--history-seconds", type=int, default=8)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--reference-dir", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--only", choices=["pigeon", "reference"], default=None)
    a = ap.parse_args()
    asyncio.run(
        compare(
            rounds=a.rounds,
            seconds=a.seconds,
            history_seconds=a.history_seconds,
            server_cpu=a.server_cpu,
            client_cpu=a.client_cpu,
            reference_dir=a.reference_dir,
            only=a.only,
        )
    )
