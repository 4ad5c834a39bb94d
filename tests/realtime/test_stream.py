"""The message stream's position (`core.stream`): never past an id that may still commit.

In memory for one process, in Redis for several (each `RedisStream` below stands for one
process), with leases for the places of a process that died.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.commands.core import AsyncScript

from pigeon.core import redis_pool
from pigeon.core.events import Envelope, positioned
from pigeon.core.stream import LocalStream, RedisStream
from tests.conftest import REDIS_URL

needs_redis = pytest.mark.skipif(not REDIS_URL, reason="PIGEON_TEST_REDIS_URL is not set")


def newest(value: int) -> Any:
    async def latest() -> int:
        return value

    return latest


async def test_the_position_stops_below_the_lowest_send_still_committing() -> None:
    stream = LocalStream(newest(10))
    await stream.start()
    assert stream.position == 10
    assert stream.upto() is None  # nothing of this process is committing: reads are not capped
    first, second = await stream.reserve(), await stream.reserve()
    assert stream.upto() == 10
    second.message_id = 12  # handed out after the first's 11, committed before it
    assert await stream.release([second], []) == (10, False)  # the caller publishes
    waiting = asyncio.ensure_future(stream.wait_for(12))
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the second send is answered only once 11 has settled
    first.message_id = 11
    assert (await stream.release([first], []))[0] == 12
    assert await waiting is True
    assert stream.upto() is None


async def test_a_rolled_back_send_lets_the_position_move_on() -> None:
    stream = LocalStream(newest(0))
    held, later = await stream.reserve(), await stream.reserve()
    later.message_id = 2
    await stream.release([later], [])
    assert stream.position == 0
    await stream.release([held], [])  # rolled back: no id
    assert stream.position == 2


async def test_a_place_reserved_after_a_release_is_above_it() -> None:
    stream = LocalStream(newest(0))
    ticket = await stream.reserve()
    ticket.message_id = 15
    await stream.release([ticket], [])
    after = await stream.reserve()  # its id will be above 15: the position may stay at 15
    assert stream.upto() == 15
    after.message_id = 16
    assert (await stream.release([after], []))[0] == 16


# --- several processes: the places in Redis ---


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    assert REDIS_URL
    client = redis_pool.client(REDIS_URL)
    yield client
    await client.aclose()


def processes(
    redis: Any, count: int, *, lease: float = 5.0, latest: int = 0, channel: str = "events"
) -> list[RedisStream]:
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    return [
        RedisStream(newest(latest), lambda: redis, prefix, lease=lease, channel=channel)
        for _ in range(count)
    ]


@needs_redis
async def test_processes_share_one_position(redis: Any) -> None:
    a, b = processes(redis, 2, latest=100)
    await a.start()
    await b.start()
    assert a.position == b.position == 100
    slow = await a.reserve()
    fast = await b.reserve()
    fast.message_id = 102
    assert await b.release([fast], []) == (100, True)  # 101 may still commit elsewhere
    slow.message_id = 101
    assert await a.release([slow], []) == (102, True)
    assert await b.sweep() == 102  # what every process reads (and hears with the events)


@needs_redis
async def test_events_go_out_with_the_position_they_settle(redis: Any) -> None:
    channel = f"pigeon-test-{uuid.uuid4().hex}:events"
    [stream] = processes(redis, 1, latest=20, channel=channel)
    await stream.start()
    listening = redis.pubsub(ignore_subscribe_messages=True)
    await listening.subscribe(channel)
    try:
        ticket = await stream.reserve()
        ticket.message_id = 21
        assert await stream.release([ticket], [b"one", b"two"]) == (21, True)
        got = []
        while len(got) < 2:
            message = await listening.get_message(timeout=2)
            if message is not None:
                got.append(message["data"])
        assert got == [b"@21\none", b"@21\ntwo"]  # released and published in one step
        assert [Envelope.decode(positioned(21, b'{"users":[1],"sent_at":0}\nx')).upto] == [21]
    finally:
        await listening.aclose()


@needs_redis
async def test_a_dead_process_holds_the_position_only_until_its_lease_ends(redis: Any) -> None:
    channel = f"pigeon-test-{uuid.uuid4().hex}:events"
    dead, alive = processes(redis, 2, lease=0.3, latest=7, channel=channel)
    await dead.start()
    await alive.start()
    await dead.reserve()  # and never releases: killed mid-send
    ticket = await alive.reserve()
    ticket.message_id = 9
    assert await alive.release([ticket], []) == (7, True)
    assert not ticket.expired()
    await asyncio.sleep(0.35)
    assert ticket.expired()  # a send this old would be refused before its commit
    listening = redis.pubsub(ignore_subscribe_messages=True)
    await listening.subscribe(channel)
    try:
        # the hub's sweep announces the position on the events channel, where every
        # process's hub hears it after the envelopes it covers
        assert await alive.sweep(b"for nobody") == 9
        got = []
        for _ in range(20):  # the first answers may be the subscription's own, skipped
            message = await listening.get_message(timeout=0.5)
            if message is not None:
                got.append(message["data"])
                break
        assert got == [b"@9\nfor nobody"]
    finally:
        await listening.aclose()


class Counted:
    """The Redis client, counting the scripts run through it (each one round trip); while
    `held`, a script's answer does not come back (Redis has run it: it is on its way)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0
        self.held = asyncio.Event()
        self.held.set()
        self.asked = asyncio.Event()

    def register_script(self, source: str) -> AsyncScript:
        return AsyncScript(self, source)  # type: ignore[arg-type]

    async def evalsha(self, *args: Any) -> Any:
        self.calls += 1
        answer = await self.client.evalsha(*args)
        self.asked.set()
        await self.held.wait()
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def heard(listening: Any, count: int) -> list[bytes]:
    got: list[bytes] = []
    async with asyncio.timeout(5):
        while len(got) < count:
            message = await listening.get_message(timeout=0.5)
            if message is not None:
                got.append(message["data"])
    return got


@needs_redis
async def test_sends_at_once_share_a_call_and_each_release_keeps_its_own_position(
    redis: Any,
) -> None:
    channel = f"pigeon-test-{uuid.uuid4().hex}:events"
    counted = Counted(redis)
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    stream = RedisStream(newest(30), lambda: counted, prefix, channel=channel)
    await stream.start()
    listening = redis.pubsub(ignore_subscribe_messages=True)
    await listening.subscribe(channel)
    try:
        counted.calls = 0
        first, second, third = await asyncio.gather(*(stream.reserve() for _ in range(3)))
        assert counted.calls == 1 and first.placed and second.placed and third.placed
        first.message_id, second.message_id, third.message_id = 31, 32, 33
        # released together, in this order: each with the position just after its own release
        counted.calls = 0
        answers = await asyncio.gather(
            stream.release([second], [b"two"]),
            stream.release([first], [b"one"]),
            stream.release([third], [b"three"]),
        )
        assert counted.calls == 1
        assert answers == [(30, True), (30, True), (33, True)]  # 31 was still out; then 32's
        assert await heard(listening, 3) == [b"@30\ntwo", b"@30\none", b"@33\nthree"]
        assert stream.position == 33 and await stream.sweep() == 33
    finally:
        await listening.aclose()


@needs_redis
async def test_a_send_that_gives_up_while_reserving_holds_back_nobody(redis: Any) -> None:
    """A request cancelled while its place is being reserved: the place is given back at once,
    not held until its lease ends (every process's deliveries would wait); one asked for
    meanwhile, and cancelled before its turn, is never made."""
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    counted = Counted(redis)
    mine = RedisStream(newest(60), lambda: counted, prefix)
    other = RedisStream(newest(60), lambda: redis, prefix)
    await mine.start()
    await other.start()
    counted.calls = 0
    counted.held.clear()
    counted.asked.clear()
    out = asyncio.ensure_future(mine.reserve())
    await counted.asked.wait()  # Redis has made the place; the answer is on its way
    queued = asyncio.ensure_future(mine.reserve())
    await asyncio.sleep(0)
    queued.cancel()
    out.cancel()
    counted.held.set()  # the answer lands, for a send that gave up
    for cancelled in (out, queued):
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    async with asyncio.timeout(1):  # well within the lease (5 s)
        while await redis.zcard(mine._keys[0]):
            await asyncio.sleep(0.005)
    assert counted.calls == 2  # the reservation, then its giving back
    ticket = await other.reserve()
    ticket.message_id = 61
    assert (await other.release([ticket], []))[0] == 61  # not held back at 60


@needs_redis
async def test_the_newest_stored_message_seeds_the_position(redis: Any) -> None:
    first, second = processes(redis, 2, latest=50)
    await first.start()
    ticket = await first.reserve()
    ticket.message_id = 51
    await first.release([ticket], [])
    restarted = RedisStream(newest(40), lambda: redis, first._keys[0].rsplit(":", 2)[0])
    await restarted.start()  # a process that read an older database state never goes back
    assert restarted.position == 51
    await second.start()
    assert second.position == 51


async def test_without_redis_sends_take_turns_and_reads_are_not_capped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here
    client = redis_pool.client(f"redis://127.0.0.1:{port}/0")
    try:
        stream = RedisStream(newest(3), lambda: client, "pigeon-test-down")
        ticket = await stream.reserve()
        assert not ticket.placed  # the send path then takes its turn alone
        ticket.message_id = 4
        assert await stream.release([ticket], [b"event"]) == (None, False)  # publish as is
        assert stream.upto() is None
    finally:
        await client.aclose()
