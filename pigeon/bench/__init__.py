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
import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from pigeon.bench.runs import run_idle, run_live
from pigeon.bench.scenarios import SCENARIOS, Scenario
from pigeon.bench.server import ServerProbe, free_port, prepare, start_server, wait_ready

__all__ = ["SCENARIOS", "Scenario", "main", "run"]


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
