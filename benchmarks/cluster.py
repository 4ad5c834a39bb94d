"""Pigeon scaled out: several `pigeon serve` processes on PostgreSQL and Redis, one machine.

Each run makes two fresh PostgreSQL databases (pigeon_bench_app, pigeon_bench_msg; dropped
again at the end) and empties Redis database 14, prepares members, tokens and direct
conversations, and starts `pigeon serve` processes on ports of their own with the same
environment (secret key, databases, Redis), pinned round-robin to `--server-cpus` with taskset.

  sockets  `--sockets` idle WebSocket connections spread evenly over `--processes` servers,
           held by client subprocesses (this file in worker mode, `--per-worker` sockets each:
           one process may hold at most 20,000 descriptors here) on the tokens of
           `--idle-members` members who are in no conversation. With all of them connected:
           `--live-clients` live clients spread over the processes (the two members of a
           conversation on different ones), senders at `--rate` msg/s over HTTP to every
           process in turn for `--duration` s, so most deliveries cross Redis. A send starts
           on its schedule when one of the `--http-per-process` keep-alive connections to its
           process is free, later otherwise (how late is reported), and not at all once the
           duration is over. Reports the sockets still open at the end, send->receive
           p50/p95/p99 (from the request's start) and the worst second, lost and duplicated
           deliveries, each server's RSS and CPU, its RSS per idle socket (after connecting
           minus before, over the sockets it holds), and how many sends waited for an
           advisory turn (a person's lock, or the one a send without a place takes alone).
  sends    sends/s with 16 closed-loop senders (wrk, keep-alive) through 1 process and through
           2 processes, each pinned to its own core, every recipient connected (on the other
           process with 2) and counted; the ratio, and CPU per send of the servers, of
           PostgreSQL and of the whole machine. Then send->receive at 50 msg/s with 2
           processes: every socket on one process, every send through the other (and, for
           comparison, sockets and sends on the same process).

Every scenario prints one JSON line, then a summary.

    .venv/bin/python benchmarks/cluster.py [sockets] [sends]
        [--processes 3] [--server-cpus 0,1] [--sockets 50000] [--per-worker 12500]
        [--idle-members 500] [--live-clients 1000] [--rate 500] [--duration 60]
        [--http-per-process 8] [--rounds 2] [--seconds 15] [--latency-seconds 20]
        [--latency-rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import errno
import fcntl
import math
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil

from pigeon.bench.clients import IdleSocket, RawHTTP, Tally, client, send_one
from pigeon.bench.reference import PIGEON_SEND
from pigeon.bench.scenarios import pct
from pigeon.bench.server import (
    ServerProbe,
    free_port,
    prepare,
    server_delivery_quantiles,
    start_server,
    wait_ready,
)

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
APP_DB, MSG_DB = "pigeon_bench_app", "pigeon_bench_msg"
REDIS_URL = "redis://127.0.0.1:6379/14"
TARGET_P99_MS = 100.0
TARGET_KIB_PER_SOCKET = 40.0

WRK_SEND = PIGEON_SEND  # each connection in turn sends as its own member


def log(text: str) -> None:
    print(f"# {text}", file=sys.stderr, flush=True)


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


SENDER_POOL, POOL_OVERFLOW = 20, 3  # each server's pool: the senders' sends in flight, and a few


def cluster_env(processes: int, max_connections: int) -> dict[str, str]:
    """The servers' settings. Their pools hold as many connections as there are senders (and
    a few more) where PostgreSQL allows it: with the default 5, most of 16 concurrent sends
    would open a connection of their own and close it after, and the benchmark would measure
    connecting instead. Every process has a pool for each of the two databases, and the
    benchmark's own connections need a few."""
    per_pool = max(5, min(SENDER_POOL, (max_connections - 10) // (2 * processes)))
    return {
        "PIGEON_DATABASE_URL": pg_url(APP_DB),
        "PIGEON_MESSAGING_DATABASE_URL": pg_url(MSG_DB),
        "PIGEON_REDIS_URL": REDIS_URL,
        "PIGEON_DATABASE_POOL_SIZE": str(per_pool - POOL_OVERFLOW),
        "PIGEON_DATABASE_MAX_OVERFLOW": str(POOL_OVERFLOW),
    }


# --- PostgreSQL and Redis ---


async def pg(database: str = "postgres") -> Any:
    import asyncpg  # type: ignore[import-untyped]

    return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=database)


async def reset_stores() -> None:
    """Fresh, empty databases and an empty Redis database."""
    await drop_stores(create=True)


async def drop_stores(*, create: bool = False) -> None:
    """The benchmark's databases dropped (and made again, empty, with `create`), and its
    Redis database emptied."""
    import redis.asyncio as aioredis

    conn = await pg()
    try:
        for name in (APP_DB, MSG_DB):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    r = aioredis.from_url(REDIS_URL)
    try:
        await r.flushdb()
    finally:
        await r.aclose()


async def stored_messages() -> int:
    conn = await pg(MSG_DB)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM message"))
    finally:
        await conn.close()


async def pg_sessions() -> int:
    """Sessions ever opened to the two databases (new server connections show here)."""
    conn = await pg()
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(sessions), 0) FROM pg_stat_database"
                " WHERE datname = ANY($1::text[])",
                [APP_DB, MSG_DB],
            )
        )
    finally:
        await conn.close()


async def pg_max_connections() -> int:
    conn = await pg()
    try:
        return int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


class LockWatch:
    """Samples, four times a second, the sends waiting for one of PostgreSQL's advisory locks
    (a person's turn, or the lock a send without a place in the message stream takes alone)."""

    def __init__(self) -> None:
        self.samples: list[int] = []
        self.task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        conn = await pg()
        try:
            while True:
                waiting = await conn.fetchval(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                    " AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
                    MSG_DB,
                )
                self.samples.append(int(waiting))
                await asyncio.sleep(0.25)
        finally:
            await conn.close()

    def __enter__(self) -> LockWatch:
        self.task = asyncio.ensure_future(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:
            self.task.cancel()

    def result(self) -> dict[str, float]:
        return {
            "mean": round(statistics.fmean(self.samples), 2) if self.samples else float("nan"),
            "max": max(self.samples, default=0),
        }


async def pg_connections() -> int:
    conn = await pg()
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = ANY($1::text[])",
                [APP_DB, MSG_DB],
            )
        )
    finally:
        await conn.close()


# --- CPU of the other parties: PostgreSQL, Redis, the whole machine ---


def _cpu_by_pid(names: tuple[str, ...]) -> dict[int, float]:
    out = {}
    for p in psutil.process_iter(["name"]):
        if p.info["name"] in names:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                out[p.pid] = t.user + t.system
    return out


class CpuMeter:
    """CPU seconds spent by PostgreSQL, by Redis and by the whole machine between two points."""

    def __init__(self) -> None:
        self.pg0 = _cpu_by_pid(("postgres",))
        self.redis0 = _cpu_by_pid(("redis-server",))
        self.machine0 = psutil.cpu_times()
        self.t0 = time.perf_counter()

    def read(self) -> dict[str, float]:
        pg1, redis1, machine1 = (
            _cpu_by_pid(("postgres",)),
            _cpu_by_pid(("redis-server",)),
            psutil.cpu_times(),
        )
        elapsed = time.perf_counter() - self.t0
        idle = (machine1.idle + machine1.iowait) - (self.machine0.idle + self.machine0.iowait)
        total = sum(machine1) - sum(self.machine0)
        return {
            "postgres_s": sum(v - self.pg0.get(pid, 0.0) for pid, v in pg1.items()),
            "redis_s": sum(v - self.redis0.get(pid, 0.0) for pid, v in redis1.items()),
            "machine_busy_s": (total - idle)
            / max(total, 1e-9)
            * elapsed
            * (psutil.cpu_count() or 1),
            "machine_busy_pct": round(100 * (total - idle) / max(total, 1e-9), 1),
            "elapsed_s": elapsed,
        }


# --- the servers ---


class Cluster:
    def __init__(self, data: Path, cpus: list[str]) -> None:
        self.data, self.cpus = data, cpus
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        self.pinned: list[str] = []
        self.probes: list[ServerProbe] = []

    async def start(self, n: int) -> Cluster:
        env = cluster_env(n, await pg_max_connections())
        for i in range(n):
            port, cpu = free_port(), self.cpus[i % len(self.cpus)] if self.cpus else None
            self.procs.append(start_server(self.data, port, cpu, env))
            self.ports.append(port)
            self.pinned.append(cpu or "any")
        await asyncio.gather(
            *(wait_ready(p, s) for p, s in zip(self.ports, self.procs, strict=True))
        )
        self.probes = [ServerProbe(p.pid) for p in self.procs]
        log(
            "servers up: "
            + ", ".join(
                f"pid {p.pid} port {port} cpu {cpu}"
                for p, port, cpu in zip(self.procs, self.ports, self.pinned, strict=True)
            )
        )
        return self

    def cpu(self) -> list[float]:
        return [p.cpu() for p in self.probes]

    def rss(self) -> list[int]:
        return [p.rss() for p in self.probes]

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()


# --- idle sockets, held by worker subprocesses ---


class HeldSocket(IdleSocket):
    """An idle socket that remembers why it failed and whether the server dropped it."""

    def __init__(self, request: bytes, hello: asyncio.Future[bool]) -> None:
        super().__init__(request, hello)
        self.lost = False
        self.why = ""

    def _done(self, ok: bool) -> None:
        if not ok and not self.hello.done():
            if self.lost:
                self.why = "connection lost before hello"
            elif not self.upgraded:
                self.why = "http " + self.buf.split(b"\r\n", 1)[0].decode(errors="replace")
            else:
                self.why = "closed by the server before hello"
        super()._done(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        super().connection_lost(exc)


async def hold_sockets(cfg: dict[str, Any]) -> None:
    """Worker mode: open sockets `start`..`start + count` (socket i on ports[i % n] with
    tokens[i % m]), say how it went, then answer `report` and `close` from stdin."""
    loop = asyncio.get_running_loop()
    ports: list[int] = cfg["ports"]
    tokens: list[str] = cfg["tokens"]
    sem = asyncio.Semaphore(cfg["concurrency"])
    held: list[tuple[int, Any, HeldSocket]] = []
    connected: collections.Counter[int] = collections.Counter()
    failures: collections.Counter[str] = collections.Counter()

    async def open_one(i: int) -> None:
        port = ports[i % len(ports)]
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /api/v1/ws?token={tokens[i % len(tokens)]} HTTP/1.1\r\nHost: bench\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        async with sem:
            hello: asyncio.Future[bool] = loop.create_future()
            try:
                transport, proto = await loop.create_connection(
                    lambda: HeldSocket(request, hello), "127.0.0.1", port
                )
            except OSError as exc:
                failures[f"connect: {errno.errorcode.get(exc.errno or 0, str(exc))}"] += 1
                return
            try:
                ok = await asyncio.wait_for(hello, cfg["hello_timeout"])
            except TimeoutError:
                failures["no hello in time"] += 1
                transport.close()
                return
            if ok:
                held.append((port, transport, proto))
                connected[port] += 1
            else:
                failures[proto.why or "refused"] += 1
                transport.close()

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            log(
                f"worker {cfg['worker']}: {sum(connected.values())}/{cfg['count']} connected, "
                f"{sum(failures.values())} failed"
            )

    ticker = asyncio.ensure_future(progress())
    t0 = time.perf_counter()
    await asyncio.gather(*(open_one(i) for i in range(cfg["start"], cfg["start"] + cfg["count"])))
    seconds = time.perf_counter() - t0
    ticker.cancel()

    def say(what: dict[str, Any]) -> None:
        sys.stdout.buffer.write(orjson.dumps(what) + b"\n")
        sys.stdout.flush()

    say(
        {
            "connected": {str(p): c for p, c in connected.items()},
            "failures": dict(failures),
            "seconds": round(seconds, 2),
        }
    )
    while True:
        command = (await asyncio.to_thread(sys.stdin.readline)).strip()
        if command == "report":
            still: collections.Counter[int] = collections.Counter()
            for port, transport, proto in held:
                if not proto.lost and not transport.is_closing():
                    still[port] += 1
            rss = psutil.Process().memory_info().rss
            say({"open": {str(p): c for p, c in still.items()}, "rss_mib": rss / 2**20})
        else:  # "close", or our parent is gone
            for _, transport, _ in held:
                transport.close()
            await asyncio.sleep(0.5)
            say({"closed": len(held)})
            return


def worker_main() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    cfg = orjson.loads(sys.stdin.buffer.readline())
    try:
        import uvloop

        uvloop.run(hold_sockets(cfg))
    except ImportError:
        asyncio.run(hold_sockets(cfg))


class Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def spawn(cls, cfg: dict[str, Any]) -> Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            os.path.abspath(__file__),
            "--worker",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            limit=2**20,
        )
        assert proc.stdin is not None
        proc.stdin.write(orjson.dumps(cfg) + b"\n")
        await proc.stdin.drain()
        return cls(proc)

    async def said(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"socket worker {self.proc.pid} exited ({self.proc.returncode})")
        return dict(orjson.loads(line))

    async def ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.said()

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ask("close"), 30)
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.proc.wait(), 10)


def _workers_cpu(workers: list[Worker]) -> float:
    total = 0.0
    for w in workers:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(w.proc.pid).cpu_times()
            total += t.user + t.system
    return total


# --- live clients and paced sends ---


class CountingHTTP(RawHTTP):
    """RawHTTP that counts the statuses it gets (and the requests that failed outright)."""

    statuses: collections.Counter[str] = collections.Counter()

    async def request(
        self, method: str, path: str, body: bytes = b"", token: str | None = None
    ) -> tuple[int, bytes]:
        try:
            status, payload = await super().request(method, path, body, token)
        except Exception as exc:
            CountingHTTP.statuses[type(exc).__name__] += 1
            raise
        CountingHTTP.statuses[str(status)] += 1
        if status >= 400 and CountingHTTP.statuses[str(status)] <= 3:
            log(f"{method} {path}: {status} {payload[:200]!r}")
        return status, payload


class Stamped(list[float]):
    """Latencies, each with the moment it arrived: for the worst second."""

    def __init__(self) -> None:
        super().__init__()
        self.at: list[float] = []

    def append(self, value: float) -> None:
        super().append(value)
        self.at.append(time.perf_counter())


async def live_run(
    *,
    users: list[tuple[int, str, int]],  # (user id, token, port of its socket)
    convs: list[tuple[int, int, int]],
    send_ports: list[int],  # send n goes through send_ports[n % len]
    rate: float,
    duration: float,
    seq0: int = 0,
    pool_per_port: int = 32,
    on_tick: Callable[[], object] | None = None,
    on_ready: Callable[[], Awaitable[object]] | None = None,
) -> dict[str, Any]:
    """Live clients connected as given, sends at `rate` for `duration`: what they saw.
    `on_ready` is awaited once every client is connected, just before the first send."""
    tally = Tally()
    stamped = Stamped()
    tally.latencies = stamped
    by_user = {uid: tok for uid, tok, _ in users}
    port_of = {uid: port for uid, _, port in users}
    ready = asyncio.Event()
    opened = [0, len(users)]
    sem = asyncio.Semaphore(100)

    async def open_one(uid: int, token: str, port: int) -> Any:
        async with sem:
            return await client(port, uid, token, tally, ready, opened)

    clients = await asyncio.gather(*(open_one(*u) for u in users))
    await asyncio.wait_for(ready.wait(), 60)
    pools: dict[int, asyncio.Queue[RawHTTP]] = {}
    for port in dict.fromkeys(send_ports):
        pools[port] = asyncio.Queue()
        for _ in range(pool_per_port):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            pools[port].put_nowait(CountingHTTP(reader, writer))
    CountingHTTP.statuses.clear()
    if on_ready is not None:
        await on_ready()

    total = int(rate * duration)
    crossing = 0
    late: list[float] = []
    skipped = [0]
    closing = [False]
    pending: set[asyncio.Task[None]] = set()
    t_start = time.perf_counter()

    async def fire(n: int, port: int, due: float) -> None:
        http = await pools[port].get()
        if closing[0]:  # the schedule is over: what has not started by then is not sent
            pools[port].put_nowait(http)
            skipped[0] += 1
            return
        late.append(1000 * (time.perf_counter() - due))
        try:
            await send_one(http, tally, seq0 + n, convs[n % len(convs)], by_user, n // len(convs))
        except Exception:  # the connection failed: count it, and use a new one
            tally.errors += 1
            http.close()
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                http = CountingHTTP(reader, writer)
        finally:
            pools[port].put_nowait(http)

    next_tick = t_start + 1
    for n in range(total):
        due = t_start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        port = send_ports[n % len(send_ports)]
        _, a, b = convs[n % len(convs)]
        recipient = b if (n // len(convs)) % 2 == 0 else a  # as `send_one` takes turns
        crossing += port_of[recipient] != port
        task = asyncio.ensure_future(fire(n, port, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if on_tick is not None and time.perf_counter() >= next_tick:
            next_tick += 1
            on_tick()
    await asyncio.sleep(max(0.0, t_start + duration - time.perf_counter()))
    closing[0] = True
    if pending:
        await asyncio.gather(*pending)
    elapsed = time.perf_counter() - t_start
    deadline = time.perf_counter() + 10  # the last deliveries
    while time.perf_counter() < deadline and not tally.acked <= tally.received:
        await asyncio.sleep(0.05)
    for ws, reader in clients:
        reader.cancel()
        with contextlib.suppress(Exception):
            await ws.close()
    for pool in pools.values():
        while not pool.empty():
            pool.get_nowait().close()

    lat = [x * 1000 for x in stamped]
    ack = [x * 1000 for x in tally.ack_latencies]
    by_second: dict[int, list[float]] = collections.defaultdict(list)
    for value, at in zip(lat, stamped.at, strict=True):
        by_second[int(at - t_start)].append(value)
    worst: dict[str, Any] = {}
    for second, values in by_second.items():
        p99 = pct(values, 0.99)
        if not worst or p99 > worst["p99_ms"]:
            worst = {
                "second": second,
                "deliveries": len(values),
                "p50_ms": round(pct(values, 0.5), 2),
                "p99_ms": round(p99, 2),
                "max_ms": round(max(values), 2),
            }
    return {
        "scheduled": total,
        "not_started": skipped[0],
        "sent": len(tally.acked),
        "errors": tally.errors,
        "http_statuses": dict(CountingHTTP.statuses),
        "sends_per_s": round(len(tally.acked) / elapsed, 1),
        "elapsed_s": round(elapsed, 2),
        "cross_process_share": round(crossing / max(total, 1), 3),
        "p50_ms": round(pct(lat, 0.50), 2),
        "p95_ms": round(pct(lat, 0.95), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "max_ms": round(max(lat, default=0), 2),
        "worst_second": worst,
        "ack_p50_ms": round(pct(ack, 0.50), 2),
        "ack_p99_ms": round(pct(ack, 0.99), 2),
        "lost": len(tally.acked - tally.received),
        "duplicated": tally.duplicates,
        # how long after its due time each send could start (all connections busy)
        "send_start_late_p50_ms": round(pct(late, 0.5), 2),
        "send_start_late_p99_ms": round(pct(late, 0.99), 2),
        "send_start_late_max_ms": round(max(late, default=0), 2),
    }


# --- scenario: idle sockets, then live traffic ---


async def scenario_sockets(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    n_live = args.live_clients - args.live_clients % 2
    users = n_live + args.idle_members
    log(f"preparing {users} members and {n_live // 2} conversations on PostgreSQL")
    ids, tokens, convs = await prepare(
        data,
        users,
        n_live // 2,
        database_url=pg_url(APP_DB),
        messaging_database_url=pg_url(MSG_DB),
    )
    idle_tokens = tokens[n_live:]
    cluster = Cluster(data, args.cpus)
    workers: list[Worker] = []
    try:
        await cluster.start(args.processes)
        ports = cluster.ports
        await asyncio.sleep(2)
        rss_before = cluster.rss()

        # the idle sockets
        n_workers = max(1, math.ceil(args.sockets / args.per_worker))
        share = [
            args.sockets // n_workers + (k < args.sockets % n_workers) for k in range(n_workers)
        ]
        log(f"opening {args.sockets} idle sockets from {n_workers} worker processes")
        start = 0
        for k, count in enumerate(share):
            cfg = {
                "worker": k,
                "ports": ports,
                "tokens": idle_tokens,
                "start": start,
                "count": count,
                "concurrency": args.connect_concurrency,
                "hello_timeout": args.hello_timeout,
            }
            workers.append(await Worker.spawn(cfg))
            start += count
        cpu0, t0 = cluster.cpu(), time.perf_counter()
        reports = await asyncio.gather(*(w.said() for w in workers))
        connect_s = time.perf_counter() - t0
        connect_cpu = [b - a for a, b in zip(cpu0, cluster.cpu(), strict=True)]
        connected = collections.Counter[int]()
        failures = collections.Counter[str]()
        for r in reports:
            connected.update({int(p): c for p, c in r["connected"].items()})
            failures.update(r["failures"])
        log(
            f"{sum(connected.values())} idle sockets connected in {connect_s:.1f} s"
            + (f"; failures: {dict(failures)}" if failures else "")
        )
        cpu0 = cluster.cpu()
        await asyncio.sleep(args.settle)
        idle_cpu = [(b - a) / args.settle for a, b in zip(cpu0, cluster.cpu(), strict=True)]
        rss_idle = cluster.rss()
        pg_idle = await pg_connections()

        # live traffic with all of them connected
        live_users = [(ids[i], tokens[i], ports[i % len(ports)]) for i in range(n_live)]
        log(
            f"live: {n_live} clients, {args.rate:g} msg/s over HTTP to {len(ports)} processes "
            f"in turn, {args.duration:g} s"
        )
        me = psutil.Process()
        at_first_send: dict[str, Any] = {}  # what the live window's figures count from

        async def first_send() -> None:
            """The live clients are connected: their hellos are not the sends' work."""
            at_first_send.update(
                meter=CpuMeter(),
                cpu=cluster.cpu(),
                sessions=await pg_sessions(),
                workers_cpu=_workers_cpu(workers),
                me_cpu=sum(me.cpu_times()[:2]),
                t=time.perf_counter(),
            )

        with LockWatch() as locks:
            live = await live_run(
                users=live_users,
                convs=convs,
                send_ports=ports,
                rate=args.rate,
                duration=args.duration,
                pool_per_port=args.http_per_process,
                on_tick=cluster.rss,
                on_ready=first_send,
            )
        live_s = time.perf_counter() - at_first_send["t"]
        me_cpu = sum(me.cpu_times()[:2]) - at_first_send["me_cpu"]
        workers_cpu = _workers_cpu(workers) - at_first_send["workers_cpu"]
        live_cpu = [b - a for a, b in zip(at_first_send["cpu"], cluster.cpu(), strict=True)]
        sessions0 = at_first_send["sessions"]
        others = at_first_send["meter"].read()
        rss_end = cluster.rss()
        pg_live = await pg_connections()
        pg_opened = await pg_sessions() - sessions0
        hand_off = [await server_delivery_quantiles(p) for p in ports]

        # what is still open at the end
        ends = await asyncio.gather(*(w.ask("report") for w in workers))
        still = collections.Counter[int]()
        for r in ends:
            still.update({int(p): c for p, c in r["open"].items()})
        worker_rss = [round(r["rss_mib"], 1) for r in ends]
    finally:
        await asyncio.gather(*(w.stop() for w in workers))
        cluster.stop()

    servers = []
    for i, port in enumerate(ports):
        grown = rss_idle[i] - rss_before[i]
        servers.append(
            {
                "port": port,
                "cpu": cluster.pinned[i],
                "idle_sockets": connected[port],
                "idle_sockets_open_at_end": still[port],
                "rss_before_mib": round(rss_before[i] / 2**20, 1),
                "rss_with_sockets_mib": round(rss_idle[i] / 2**20, 1),
                "rss_end_mib": round(rss_end[i] / 2**20, 1),
                "peak_rss_mib": round(cluster.probes[i].peak_rss / 2**20, 1),
                "kib_per_idle_socket": round(grown / max(1, connected[port]) / 1024, 1),
                "cpu_pct_connecting": round(100 * connect_cpu[i] / connect_s, 1),
                "cpu_pct_idle": round(100 * idle_cpu[i], 1),
                "cpu_pct_live": round(100 * live_cpu[i] / live_s, 1),
                "cpu_ms_per_send": round(1000 * live_cpu[i] / max(1, live["sent"]), 3),
                "commit_to_socket_p50_ms": hand_off[i].get(0.5),
                "commit_to_socket_p99_ms": hand_off[i].get(0.99),
            }
        )
    total_grown = sum(b - a for a, b in zip(rss_before, rss_idle, strict=True))
    kib = round(total_grown / max(1, sum(connected.values())) / 1024, 1)
    worst_kib = max(s["kib_per_idle_socket"] for s in servers)
    return {
        "scenario": "sockets",
        "processes": args.processes,
        "sockets_asked": args.sockets,
        "sockets_connected": sum(connected.values()),
        "sockets_open_at_end": sum(still.values()),
        "socket_failures": dict(failures),
        "connect_s": round(connect_s, 1),
        "connects_per_s": round(sum(connected.values()) / max(connect_s, 1e-9), 0),
        "socket_workers": len(workers),
        "socket_worker_rss_mib": worker_rss,
        "idle_members": args.idle_members,
        "live_clients": n_live,
        "conversations": len(convs),
        "target_rate": args.rate,
        "duration_s": args.duration,
        "http_per_process": args.http_per_process,
        **live,
        "kib_per_idle_socket": kib,
        "kib_per_idle_socket_worst_process": worst_kib,
        "servers": servers,
        "server_cpu_ms_per_send": round(1000 * sum(live_cpu) / max(1, live["sent"]), 3),
        "postgres_cpu_pct_live": round(100 * others["postgres_s"] / others["elapsed_s"], 1),
        "redis_cpu_pct_live": round(100 * others["redis_s"] / others["elapsed_s"], 1),
        "machine_busy_pct_live": others["machine_busy_pct"],
        "live_client_cpu_pct": round(100 * me_cpu / live_s, 1),
        "socket_workers_cpu_pct_live": round(100 * workers_cpu / live_s, 1),
        "pg_connections_idle": pg_idle,
        "pg_connections_after_live": pg_live,
        "pg_sessions_opened_live": pg_opened,
        "pg_send_lock_waiters_live": locks.result(),
        "pg_max_connections": await pg_max_connections(),
        "targets": {
            "p99_ms": TARGET_P99_MS,
            "p99_met": live["p99_ms"] <= TARGET_P99_MS,
            "kib_per_idle_socket": TARGET_KIB_PER_SOCKET,
            "kib_met": worst_kib <= TARGET_KIB_PER_SOCKET,
        },
    }


def summary_sockets(r: dict[str, Any]) -> list[str]:
    ok = {True: "met", False: "NOT met"}
    w = r["worst_second"]
    out = [
        f"sockets: {r['processes']} pigeon processes on PostgreSQL + Redis",
        f"  idle sockets: {r['sockets_connected']}/{r['sockets_asked']} connected in "
        f"{r['connect_s']} s ({r['connects_per_s']:.0f}/s), {r['sockets_open_at_end']} still "
        f"open at the end" + (f"; failures {r['socket_failures']}" if r["socket_failures"] else ""),
        f"  live: {r['live_clients']} clients, {r['sent']} sends at {r['sends_per_s']}/s "
        f"(target {r['target_rate']:g}; {r['not_started']} of {r['scheduled']} never started: "
        f"behind schedule at the end), {r['errors']} errors, "
        f"{100 * r['cross_process_share']:.0f}% delivered on another process than the send",
        f"  send->receive p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms, "
        f"max {r['max_ms']} ms; worst second (#{w.get('second')}): p99 {w.get('p99_ms')} ms, "
        f"max {w.get('max_ms')} ms",
        f"  lost {r['lost']}, duplicated {r['duplicated']}; HTTP ack p50 {r['ack_p50_ms']} ms, "
        f"p99 {r['ack_p99_ms']} ms; sends started late (all {r['http_per_process']} connections "
        f"per process busy) by p50 {r['send_start_late_p50_ms']} ms, p99 "
        f"{r['send_start_late_p99_ms']} ms",
    ]
    for s in r["servers"]:
        out.append(
            f"  server :{s['port']} (cpu {s['cpu']}): {s['idle_sockets']} idle sockets, "
            f"RSS {s['rss_before_mib']} -> {s['rss_with_sockets_mib']} MiB "
            f"({s['kib_per_idle_socket']} KiB/socket), {s['rss_end_mib']} MiB after live "
            f"(peak {s['peak_rss_mib']}); CPU {s['cpu_pct_idle']}% idle, "
            f"{s['cpu_pct_live']}% live ({s['cpu_ms_per_send']} ms/send)"
        )
    out += [
        f"  server CPU per send {r['server_cpu_ms_per_send']} ms; PostgreSQL "
        f"{r['postgres_cpu_pct_live']}% and Redis {r['redis_cpu_pct_live']}% of a core, "
        f"machine {r['machine_busy_pct_live']}% busy during live traffic; PostgreSQL: "
        f"{r['pg_connections_after_live']} connections of max {r['pg_max_connections']}, "
        f"{r['pg_sessions_opened_live']} opened during live traffic, sends waiting for an "
        f"advisory turn: mean {r['pg_send_lock_waiters_live']['mean']}, max "
        f"{r['pg_send_lock_waiters_live']['max']}",
        f"  load generator during live traffic: live clients {r['live_client_cpu_pct']}%, idle "
        f"socket workers {r['socket_workers_cpu_pct_live']}% of a core",
        f"  target p99 <= {TARGET_P99_MS:g} ms: {ok[r['targets']['p99_met']]} ({r['p99_ms']} ms); "
        f"<= {TARGET_KIB_PER_SOCKET:g} KiB per idle socket: {ok[r['targets']['kib_met']]} "
        f"({r['kib_per_idle_socket']} overall, {r['kib_per_idle_socket_worst_process']} worst "
        f"process)",
    ]
    return out


# --- scenario: sends/s through 1 and 2 processes, and the Redis hop ---


@dataclass
class WrkLoad:
    requests: int
    seconds: float
    non_2xx: int
    p50_ms: float
    p99_ms: float


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def run_wrk(
    port: int, script: str, connections: int, seconds: int, cpu: str | None
) -> WrkLoad:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", f.name]
    cmd.append(f"http://127.0.0.1:{port}")
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    try:
        proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE)
        out = (await proc.communicate())[0].decode()
    finally:
        os.unlink(f.name)
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", out)
    if not done:
        raise RuntimeError(f"wrk said:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return WrkLoad(
        requests=int(done.group(1)),
        seconds=float(done.group(2)) / (1000 if done.group(3) == "ms" else 1),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        p50_ms=_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=_ms(p99.group(1)) if p99 else float("nan"),
    )


async def listen(port: int, token: str, counts: dict[int, int], dupes: list[int]) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(
        f"ws://127.0.0.1:{port}/api/v1/ws?token={token}",
        compression=None,
        ping_interval=None,
        max_queue=None,
    )
    await ws.recv()  # hello

    async def read() -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                frame = orjson.loads(raw)
                if frame["type"] == "message.new":
                    mid = frame["id"]
                    counts[mid] = counts.get(mid, 0) + 1
                    if counts[mid] > 1:
                        dupes[0] += 1

    return ws, asyncio.ensure_future(read())


async def sends_once(
    args: argparse.Namespace, data: Path, n: int, by_id: dict[int, str], convs: list[Any]
) -> dict[str, Any]:
    """16 closed-loop senders through `n` processes (n wrk instances, 16/n connections each,
    each with its own conversations); every recipient's socket on another process."""
    cluster = Cluster(data, args.cpus)
    try:
        await cluster.start(n)
        ports = cluster.ports
        counts: dict[int, int] = {}
        dupes = [0]
        # conversation k: sent through ports[k % n], its recipient listening on the next one
        listeners = [
            await listen(ports[(k + 1) % n], by_id[b], counts, dupes)
            for k, (_, _, b) in enumerate(convs)
        ]
        scripts = []
        for j in range(n):
            mine = [c for k, c in enumerate(convs) if k % n == j]
            pairs = ", ".join(f'{{"{by_id[a]}", {conv}}}' for conv, a, _ in mine)
            scripts.append(WRK_SEND % pairs)
        stored0 = await stored_messages()
        await asyncio.sleep(1)
        meter, cpu0, sessions0 = CpuMeter(), cluster.cpu(), await pg_sessions()
        with LockWatch() as locks:
            loads = await asyncio.gather(
                *(
                    run_wrk(ports[j], scripts[j], args.senders // n, args.seconds, args.wrk_cpu)
                    for j in range(n)
                )
            )
        cpu = [b - a for a, b in zip(cpu0, cluster.cpu(), strict=True)]
        others = meter.read()
        rss = cluster.rss()
        opened = await pg_sessions() - sessions0
        await asyncio.sleep(2)  # the last deliveries
        stored = await stored_messages() - stored0
        for ws, task in listeners:
            task.cancel()
            with contextlib.suppress(Exception):
                await ws.close()
    finally:
        cluster.stop()
    requests = sum(x.requests for x in loads)
    seconds = max(x.seconds for x in loads)
    return {
        "processes": n,
        "cpus": cluster.pinned,
        "connections": args.senders,
        "requests": requests,
        "non_2xx": sum(x.non_2xx for x in loads),
        "sends_per_s": round(sum(x.requests / x.seconds for x in loads), 1),
        "http_p50_ms": round(max(x.p50_ms for x in loads), 2),
        "http_p99_ms": round(max(x.p99_ms for x in loads), 2),
        "stored": stored,
        "lost": stored - len(counts),
        "duplicated": dupes[0],
        "server_cpu_ms_per_send": round(1000 * sum(cpu) / max(1, requests), 3),
        "server_cpu_pct": [round(100 * c / seconds, 1) for c in cpu],
        "postgres_cpu_ms_per_send": round(1000 * others["postgres_s"] / max(1, requests), 3),
        "redis_cpu_ms_per_send": round(1000 * others["redis_s"] / max(1, requests), 3),
        "machine_cpu_ms_per_send": round(1000 * others["machine_busy_s"] / max(1, requests), 3),
        "machine_busy_pct": others["machine_busy_pct"],
        "server_rss_mib": [round(x / 2**20, 1) for x in rss],
        "pg_sessions_opened": opened,
        "pg_send_lock_waiters": locks.result(),
    }


async def scenario_sends(args: argparse.Namespace, data: Path) -> dict[str, Any]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed for `sends` (Debian's wrk package)")
    n_conv = max(args.senders, 16)
    log(f"preparing {2 * n_conv} members and {n_conv} conversations on PostgreSQL")
    ids, tokens, convs = await prepare(
        data,
        2 * n_conv,
        n_conv,
        database_url=pg_url(APP_DB),
        messaging_database_url=pg_url(MSG_DB),
    )
    by_id = dict(zip(ids, tokens, strict=True))
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for n in (1, 2):
            result = await sends_once(args, data, n, by_id, convs)
            result["round"] = r + 1
            rounds.append(result)
            log(
                f"round {r + 1}, {n} process{'es' if n > 1 else ''}: "
                f"{result['sends_per_s']} sends/s, server CPU {result['server_cpu_ms_per_send']} "
                f"ms/send, PostgreSQL {result['postgres_cpu_ms_per_send']} ms/send, machine "
                f"{result['machine_busy_pct']}% busy, lost {result['lost']}, "
                f"duplicated {result['duplicated']}"
            )

    # the Redis hop: every socket on one process, every send through the other
    cluster = Cluster(data, args.cpus)
    try:
        await cluster.start(2)
        a, b = cluster.ports
        users = [(uid, by_id[uid], b) for uid in ids]
        log(f"latency: {args.latency_rate:g} msg/s through :{a}, sockets on :{b}")
        cross = await live_run(
            users=users,
            convs=convs,
            send_ports=[a],
            rate=args.latency_rate,
            duration=args.latency_seconds,
            pool_per_port=8,
        )
        users = [(uid, by_id[uid], a) for uid in ids]
        log(f"latency: {args.latency_rate:g} msg/s through :{a}, sockets on :{a}")
        same = await live_run(
            users=users,
            convs=convs,
            send_ports=[a],
            rate=args.latency_rate,
            duration=args.latency_seconds,
            seq0=10_000_000,
            pool_per_port=8,
        )
    finally:
        cluster.stop()

    def median(n: int, key: str) -> float:
        return round(statistics.median(x[key] for x in rounds if x["processes"] == n), 3)

    one, two = median(1, "sends_per_s"), median(2, "sends_per_s")
    return {
        "scenario": "sends",
        "senders": args.senders,
        "seconds": args.seconds,
        "rounds": rounds,
        "sends_per_s_1_process": one,
        "sends_per_s_2_processes": two,
        "ratio_2_over_1": round(two / one, 2) if one else None,
        "server_cpu_ms_per_send_1_process": median(1, "server_cpu_ms_per_send"),
        "server_cpu_ms_per_send_2_processes": median(2, "server_cpu_ms_per_send"),
        "postgres_cpu_ms_per_send_1_process": median(1, "postgres_cpu_ms_per_send"),
        "postgres_cpu_ms_per_send_2_processes": median(2, "postgres_cpu_ms_per_send"),
        "machine_cpu_ms_per_send_1_process": median(1, "machine_cpu_ms_per_send"),
        "machine_cpu_ms_per_send_2_processes": median(2, "machine_cpu_ms_per_send"),
        "lost": sum(x["lost"] for x in rounds),
        "duplicated": sum(x["duplicated"] for x in rounds),
        "latency_rate": args.latency_rate,
        "latency_seconds": args.latency_seconds,
        "cross_process": cross,
        "same_process": same,
    }


def summary_sends(r: dict[str, Any]) -> list[str]:
    out = [f"sends: {r['senders']} closed-loop senders (wrk), {r['seconds']} s a run, PostgreSQL"]
    for x in r["rounds"]:
        out.append(
            f"  round {x['round']}, {x['processes']} process(es) on cpu {','.join(x['cpus'])}: "
            f"{x['sends_per_s']} sends/s (HTTP p50 {x['http_p50_ms']} ms, p99 "
            f"{x['http_p99_ms']} ms, {x['non_2xx']} non-2xx), server CPU "
            f"{x['server_cpu_ms_per_send']} ms/send ({'/'.join(map(str, x['server_cpu_pct']))}%), "
            f"PostgreSQL {x['postgres_cpu_ms_per_send']} ms/send, machine "
            f"{x['machine_cpu_ms_per_send']} ms/send ({x['machine_busy_pct']}% busy), "
            f"lost {x['lost']}, duplicated {x['duplicated']}, {x['pg_sessions_opened']} PostgreSQL "
            f"sessions opened, sends waiting for an advisory turn: mean "
            f"{x['pg_send_lock_waiters']['mean']}, max {x['pg_send_lock_waiters']['max']}"
        )
    c, s = r["cross_process"], r["same_process"]
    out += [
        f"  median sends/s: 1 process {r['sends_per_s_1_process']}, 2 processes "
        f"{r['sends_per_s_2_processes']}, ratio {r['ratio_2_over_1']}",
        f"  server CPU per send: {r['server_cpu_ms_per_send_1_process']} ms (1 process), "
        f"{r['server_cpu_ms_per_send_2_processes']} ms (2); PostgreSQL "
        f"{r['postgres_cpu_ms_per_send_1_process']} / {r['postgres_cpu_ms_per_send_2_processes']}"
        f" ms; whole machine {r['machine_cpu_ms_per_send_1_process']} / "
        f"{r['machine_cpu_ms_per_send_2_processes']} ms",
        f"  send->receive at {r['latency_rate']:g} msg/s, 2 processes: across processes p50 "
        f"{c['p50_ms']} ms, p99 {c['p99_ms']} ms (lost {c['lost']}, dup {c['duplicated']}); "
        f"same process p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms (lost {s['lost']}, "
        f"dup {s['duplicated']})",
    ]
    return out


# --- running ---

SCENARIOS = {
    "sockets": (scenario_sockets, summary_sockets),
    "sends": (scenario_sends, summary_sends),
}


async def run(args: argparse.Namespace) -> list[tuple[dict[str, Any], list[str]]]:
    results = []
    for name in args.scenario or ["sockets"]:
        scenario, summary = SCENARIOS[name]
        with tempfile.TemporaryDirectory(prefix="pigeon-cluster-") as tmp:
            await reset_stores()
            try:
                result = await scenario(args, Path(tmp))
            finally:
                await drop_stores()
        print(orjson.dumps(result).decode(), flush=True)
        results.append((result, summary(result)))
    return results


def main() -> None:
    if "--worker" in sys.argv[1:]:
        worker_main()
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="*", help="sockets (default) | sends")
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--server-cpus", default="0,1", help="comma-separated; empty: unpinned")
    ap.add_argument("--sockets", type=int, default=50_000)
    ap.add_argument(
        "--per-worker", type=int, default=12_500, help="idle sockets per client process"
    )
    ap.add_argument("--idle-members", type=int, default=500)
    ap.add_argument("--connect-concurrency", type=int, default=200, help="per client process")
    ap.add_argument("--hello-timeout", type=float, default=120.0)
    ap.add_argument("--settle", type=float, default=5.0, help="seconds before RSS is read")
    ap.add_argument("--live-clients", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=500.0)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument(
        "--http-per-process",
        type=int,
        default=8,
        help="keep-alive connections the paced senders use to each process",
    )
    ap.add_argument("--senders", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=15, help="each sends run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--wrk-cpu", default=None, help="pin wrk (default: unpinned)")
    ap.add_argument("--latency-rate", type=float, default=50.0)
    ap.add_argument("--latency-seconds", type=float, default=20.0)
    args = ap.parse_args()
    unknown = [n for n in args.scenario if n not in SCENARIOS]
    if unknown:
        ap.error(f"unknown scenario {unknown[0]!r}")
    args.cpus = [c for c in args.server_cpus.split(",") if c] if args.server_cpus else []
    if args.per_worker > 19_000:
        ap.error("--per-worker: a process may hold at most 20,000 descriptors here")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop

        loop_factory: Any = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    # one run at a time: a second one would drop the databases under the first
    lock = open(os.path.join(tempfile.gettempdir(), "pigeon-bench-cluster.lock"), "w")  # noqa: SIM115
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit("another benchmarks/cluster.py is running") from None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        results = runner.run(run(args))
    print()
    for _, lines in results:
        print("\n".join(lines))


if __name__ == "__main__":
    main()
