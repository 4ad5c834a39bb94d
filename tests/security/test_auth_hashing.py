"""Password hashing never stalls the server: it runs beside the event loop, outside any
transaction, a few hashes at a time.

The cost here is the production one (argon2id, 64 MiB, t=2), so that a hash run on the event
loop, or under a write lock, would show as a stall of about one hash (~0.1 s or more).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
import uvicorn
from argon2 import PasswordHasher, Type
from fastapi import FastAPI

from pigeon.core.security import Passwords

API = "/api/v1"
COST = {"password_hash_time_cost": 2, "password_hash_memory_kib": 65536}


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={**COST, "password_hash_concurrency": 2})


def one_hash() -> float:
    """Seconds one hash takes on this machine, now: what a stall would cost."""
    hasher = PasswordHasher(time_cost=2, memory_cost=65536, parallelism=1, type=Type.ID)
    start = time.perf_counter()
    hasher.hash("calibration")
    return time.perf_counter() - start


def member(n: int) -> dict[str, str]:
    return {
        "email": f"member{n}@example.com",
        "username": f"member{n}",
        "password": "a long enough password",
    }


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The test's app (its lifespan already running) on a real socket: its base URL."""
    # IPPROTO_TCP named, so that asyncio sets TCP_NODELAY on accepted connections (without
    # it every answer waits ~40 ms for a delayed ACK)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def health_checks(url: str, stop: threading.Event) -> list[float]:
    """What a load balancer sees: /healthz asked every few milliseconds, from another thread."""
    waits = []
    with httpx.Client(base_url=url, timeout=30) as http:
        while not stop.is_set():
            start = time.perf_counter()
            assert http.get("/healthz").status_code == 200
            waits.append(time.perf_counter() - start)
            time.sleep(0.005)
    return waits


async def test_a_flood_of_sign_ins_and_sign_ups_does_not_stall_health_checks(app):
    """Twenty anonymous bad sign-ins and five sign-ups at once, over real sockets: /healthz,
    asked all the while, keeps answering fast."""
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def bad_sign_in(n: int) -> None:
            r = await client.post(
                f"{API}/auth/login", json={"login": f"nobody{n}", "password": "not the password"}
            )
            assert r.status_code == 401, r.text

        async def sign_up(n: int) -> None:
            r = await client.post(f"{API}/auth/register", json=member(n))
            assert r.status_code == 201, r.text

        # each route once first: a route's first request sets things up (not what is measured)
        await sign_up(99)
        await bad_sign_in(99)
        stall = one_hash()
        stop = threading.Event()
        checks = asyncio.ensure_future(asyncio.to_thread(health_checks, url, stop))
        try:
            await asyncio.gather(
                *(bad_sign_in(n) for n in range(20)), *(sign_up(n) for n in range(5))
            )
        finally:
            stop.set()
            waits = await checks
    # On the event loop, each hash would hold up whichever checks arrive meanwhile: most would
    # wait most of a hash. Beside it, only the flood's own request handling is felt, so nine
    # checks in ten answer within a third of one hash. (Not all: on a busy machine one check may
    # still wait for the scheduler, whatever the server does.)
    waits.sort()
    assert len(waits) >= 20, waits  # the flood lasted a while: 25 hashes, two at a time
    p90 = waits[int(len(waits) * 0.9)]
    assert p90 < max(stall / 3, 0.02), (p90, stall, waits[-5:])


async def test_a_slow_sign_in_holds_no_lock_that_a_write_needs(app, client):
    """While a sign-in checks its password, someone else's write to the same database goes
    through: the check holds no transaction (on SQLite: no write lock) and no event loop.

    The check is held open until the write has answered, so nothing here depends on timing: a
    sign-in that kept a lock while checking would keep the write waiting until it gave up."""
    r = await client.post(f"{API}/auth/register", json=member(1))
    assert r.status_code == 201
    other = r.json()  # writes while member0 signs in
    assert (await client.post(f"{API}/auth/register", json=member(0))).status_code == 201
    passwords = app.state.runtime.passwords
    checking, may_finish = threading.Event(), threading.Event()
    real_check = passwords._check

    def held_check(password_hash: str, password: str) -> bool:
        checking.set()
        may_finish.wait(60)
        return real_check(password_hash, password)

    passwords._check = held_check
    try:
        sign_in = asyncio.ensure_future(
            client.post(
                f"{API}/auth/login",
                json={"login": "member0", "password": "a long enough password"},
            )
        )
        assert await asyncio.to_thread(checking.wait, 30), "the sign-in never checked"
        r = await asyncio.wait_for(
            client.put(
                f"{API}/users/{other['user']['id']}",
                json={"display_name": "Renamed meanwhile"},
                headers={"Authorization": f"Bearer {other['access_token']}"},
            ),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert not sign_in.done()  # the write went through while the password was checked
    finally:
        may_finish.set()
        passwords._check = real_check
    r = await sign_in
    assert r.status_code == 200, r.text
    assert r.json()["user"]["username"] == "member0"


async def test_hashes_wait_their_turn_for_a_few_slots():
    """However many sign-ins arrive, at most `password_hash_concurrency` hashes run at once: with
    one slot, hashing never keeps more than one core busy (a flood queues, it does not spread
    over every core the server has)."""
    passwords = Passwords(time_cost=2, memory_kib=65536, concurrency=1)
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(passwords.hash("a long enough password") for _ in range(8)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert cpu < wall * 1.3, (cpu, wall)


async def test_hashes_run_below_the_event_loop_s_priority():
    """On a core the event loop also needs, deliveries go first: the hashing threads run at a
    lower priority (a higher nice value) than the thread that serves requests."""
    import os

    passwords = Passwords(time_cost=2, memory_kib=19456, concurrency=1)
    seen: list[int] = []
    real_check = passwords._check

    def check(password_hash: str, password: str) -> bool:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return real_check(password_hash, password)

    passwords._check = check  # type: ignore[method-assign]
    stored = await passwords.hash("a long enough password")
    assert await passwords.verify(stored, "a long enough password")
    loop_priority = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert seen and seen[0] > loop_priority
    passwords.close()
