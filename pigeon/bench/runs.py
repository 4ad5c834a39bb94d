"""Running one scenario's load against a started server."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import time
from typing import Any

from pigeon.bench.clients import IdleSocket, RawHTTP, Tally, client, send_one
from pigeon.bench.scenarios import Scenario, pct
from pigeon.bench.server import ServerProbe, server_delivery_quantiles


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
    # the load's own collector stays off what it set up (a full pass over 1,000 clients
    # took 60-90 ms here): its pauses would be counted as the server's latency
    gc.collect()
    gc.freeze()

    cpu0, t_start = probe.cpu(), time.perf_counter()
    rss_samples: list[tuple[float, int]] = []
    seq = 0
    if sc.rate > 0:
        total = int(sc.rate * sc.duration)
        pending: set[asyncio.Task[None]] = set()

        async def fire(n: int) -> None:
            http = await pool.get()
            try:
                await send_one(http, tally, n, convs[n % len(convs)], by_user, n // len(convs))
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
                rss_samples.append((time.perf_counter(), probe.rss()))
        await asyncio.gather(*pending)
    else:
        counter = [0]
        stop_at = t_start + sc.duration

        async def loop(k: int) -> None:
            http = await pool.get()
            conv = convs[k % len(convs)]
            turn = 0
            while time.perf_counter() < stop_at:
                n = counter[0]
                counter[0] += 1
                await send_one(http, tally, n, conv, by_user, turn)
                turn += 1

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
    gc.unfreeze()
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
        **by_minute(tally, rss_samples, t_start),
    }


def by_minute(tally: Tally, rss_samples: list[tuple[float, int]], t_start: float) -> dict[str, Any]:
    """For a run of two minutes or more (a soak): each minute's p99 and the server's RSS at
    its end, the worst minute, and how much the RSS grew from the first minute to the last."""
    minutes: dict[int, list[float]] = {}
    for at, latency in zip(tally.received_at, tally.latencies, strict=True):
        minutes.setdefault(int((at - t_start) // 60), []).append(latency * 1000)
    if len(minutes) < 2:
        return {}
    rss: dict[int, int] = {}
    for at, value in rss_samples:
        rss[int((at - t_start) // 60)] = value
    p99s = {m: round(pct(minutes[m], 0.99), 2) for m in sorted(minutes)}
    rows = [
        {"minute": m + 1, "p99_ms": p99, "rss_mib": round(rss[m] / 2**20, 1) if m in rss else None}
        for m, p99 in p99s.items()
    ]
    sampled = [rss[m] for m in sorted(rss)]
    growth = 100 * (sampled[-1] - sampled[0]) / sampled[0] if len(sampled) > 1 else None
    return {
        "minutes": rows,
        "worst_minute_p99_ms": max(p99s.values()),
        "rss_growth_pct": round(growth, 1) if growth is not None else None,
    }


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
