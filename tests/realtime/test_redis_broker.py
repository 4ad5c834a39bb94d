"""The Redis broker: every process hears every envelope under its prefix, and a dropped
subscription is noticed and healed (live connections are then told to resume)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from pigeon.core.events import CONTROL_CHANNEL, EVENTS_CHANNEL
from pigeon.realtime.presence import RedisPresence
from pigeon.realtime.redis_broker import RedisBroker
from tests.conftest import REDIS_URL
from tests.support.brokers import cut_subscription

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not REDIS_URL, reason="PIGEON_TEST_REDIS_URL is not set"),
]


@pytest.fixture
async def brokers():  # type: ignore[no-untyped-def]
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    made = [
        RedisBroker(REDIS_URL, prefix=prefix),
        RedisBroker(REDIS_URL, prefix=prefix),
        RedisBroker(REDIS_URL, prefix=prefix + "-other"),
    ]
    for b in made:
        await b.start()
    yield made
    for b in made:
        await b.stop()


def collector(broker):  # type: ignore[no-untyped-def]
    got: asyncio.Queue = asyncio.Queue()

    async def listener(channel, payload):  # type: ignore[no-untyped-def]
        await got.put((channel, payload))

    broker.add_listener(listener)
    return got


async def test_every_process_with_the_same_prefix_hears_every_envelope(brokers):
    a, b, other = brokers
    got_a, got_b, got_other = collector(a), collector(b), collector(other)
    await a.publish(EVENTS_CHANNEL, b"event")
    await b.publish(CONTROL_CHANNEL, b"control")
    for got in (got_a, got_b):
        assert await asyncio.wait_for(got.get(), 5) == (EVENTS_CHANNEL, b"event")
        assert await asyncio.wait_for(got.get(), 5) == (CONTROL_CHANNEL, b"control")
    assert got_other.empty()  # another deployment sharing the Redis hears nothing
    assert await a.ping()


async def test_a_dropped_subscription_is_healed_and_reported(brokers):
    a, b, _ = brokers
    got_b = collector(b)
    await cut_subscription(b, by=a)  # and b reports the gap to its listeners
    await a.publish(EVENTS_CHANNEL, b"after")
    assert await asyncio.wait_for(got_b.get(), 5) == (EVENTS_CHANNEL, b"after")


@pytest.fixture
async def space():  # type: ignore[no-untyped-def]
    """Redis, and a prefix of its own for the presence under test: emptied after."""
    from redis.asyncio import from_url

    redis = from_url(REDIS_URL)
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    try:
        yield redis, prefix
    finally:
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_presence_spans_processes_and_forgets_a_dead_one(space):
    redis, prefix = space
    one = RedisPresence(redis, prefix, ttl_seconds=30)
    two = RedisPresence(redis, prefix, ttl_seconds=30)
    assert await one.came_online(7) is True  # the first connection anywhere
    assert await two.came_online(7) is False  # already online through the other process
    assert await one.went_offline(7) is False  # still connected through `two`
    assert await one.is_online(7)
    await two.close()  # that process dies: its liveness key is gone
    assert not await one.is_online(7)
    assert await one.came_online(7) is True


async def test_a_dead_process_users_are_swept_offline_once(space):
    redis, prefix = space
    dead = RedisPresence(redis, prefix, ttl_seconds=30)
    one = RedisPresence(redis, prefix, ttl_seconds=30)
    two = RedisPresence(redis, prefix, ttl_seconds=30)
    await dead.came_online(7)  # only there
    await dead.came_online(8)
    await one.came_online(8)  # also here
    await dead.heartbeat([7, 8])
    await one.heartbeat([8])
    assert await one.sweep() == []  # everyone is alive
    await redis.delete(f"{prefix}:process:{dead.process}")  # killed: its heartbeat lapses
    swept = await asyncio.gather(one.sweep(), two.sweep())
    assert sorted(swept, key=len) == [[], [7]]  # one survivor claims it; 8 is still online
    assert not await one.is_online(7) and await two.is_online(8)
    assert await one.sweep() == [] and await two.sweep() == []


async def test_heartbeats_bring_back_what_redis_lost_of_the_users_connected(space):
    """Each beat renews a share of the users' sets, so that thousands of connections never hold
    the event loop at once; within a few beats every user is back, as seen from elsewhere."""
    redis, prefix = space
    here = RedisPresence(redis, prefix, ttl_seconds=30)
    there = RedisPresence(redis, prefix, ttl_seconds=30)
    users = list(range(1, 2_001))
    for uid in users[:3]:
        await here.came_online(uid)
    await here.heartbeat(users)
    keys = [k async for k in redis.scan_iter(f"{prefix}:presence:*")]
    await redis.delete(*keys)  # Redis lost them (restarted, say)
    assert not any([await there.is_online(uid) for uid in users[:3]])
    for _ in range(RedisPresence.SHARES):
        await here.heartbeat(users)
    assert all([await there.is_online(uid) for uid in users])
    ttl = await redis.pttl(f"{prefix}:presence:{users[-1]}")
    assert ttl > 30_000  # outlives a liveness key: renewed well before it ends
    served = await redis.smembers(f"{prefix}:served:{here.process}")
    assert {int(u) for u in served} == set(users)  # a sweep would find them all

    # its liveness lapsed (a long stall) and another process swept its users away
    await redis.delete(f"{prefix}:process:{here.process}")
    assert len(await there.sweep()) == len(users)
    assert not await there.is_online(users[0])
    await here.heartbeat(users)  # one beat brings them all back
    assert all([await there.is_online(uid) for uid in users])


async def test_a_dead_process_with_many_users_is_swept_in_chunks(space):
    redis, prefix = space
    dead = RedisPresence(redis, prefix, ttl_seconds=30)
    one = RedisPresence(redis, prefix, ttl_seconds=30)
    users = list(range(1, 3 * RedisPresence.CHUNK + 2))
    also_here = set(users[::7])
    for _ in range(RedisPresence.SHARES):
        await dead.heartbeat(users)
    for uid in also_here:
        await one.came_online(uid)
    await redis.delete(f"{prefix}:process:{dead.process}")
    assert sorted(await one.sweep()) == sorted(set(users) - also_here)
    assert all([await one.is_online(uid) for uid in also_here])
    assert not any([await one.is_online(uid) for uid in users if uid not in also_here])
