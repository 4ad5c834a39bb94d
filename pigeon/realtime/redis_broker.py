"""The scale-out broker: Redis pub/sub, so every process hears every event and control message.

Channels are namespaced by the settings' Redis prefix, so several deployments (or test runs)
can share one Redis. Each process subscribes once to both channels; its hub then picks the
envelopes addressed to users it holds connections for. If the subscription drops, events
published in the gap never arrive here, so the broker tells its gap listeners (the hub closes
live connections with "reconnect and resume", and clients catch up from the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import RedisError

from pigeon.core import redis_pool
from pigeon.core.errors import log_failure
from pigeon.core.events import CONTROL_CHANNEL, EVENTS_CHANNEL, Listener

log = logging.getLogger("pigeon.broker")

GapListener = Callable[[], Awaitable[None]]


class RedisBroker:
    def __init__(self, url: str, prefix: str = "pigeon") -> None:
        self.url = url
        self.prefix = prefix
        self.name = f"{prefix}:broker:{uuid.uuid4().hex[:8]}"  # shows in CLIENT LIST
        self.redis: Any = None
        self._listeners: list[Listener] = []
        self._gap_listeners: list[GapListener] = []
        self._to_redis = {
            c: f"{prefix}:{c.split(':', 1)[-1]}" for c in (EVENTS_CHANNEL, CONTROL_CHANNEL)
        }
        self._from_redis = {v.encode(): k for k, v in self._to_redis.items()}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    def redis_channel(self, channel: str) -> str:
        """The Redis channel one of ours is published on (`core.stream` publishes events)."""
        return self._to_redis[channel]

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def add_gap_listener(self, listener: GapListener) -> None:
        self._gap_listeners.append(listener)

    async def start(self) -> None:
        self.redis = redis_pool.client(self.url, health_check_interval=30, client_name=self.name)
        await self.redis.ping()
        await self._subscribe()
        self._reader = asyncio.ensure_future(self._read_loop())

    async def _subscribe(self) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(*self._to_redis.values())
        self._subscribed.set()

    async def _read_loop(self) -> None:
        backoff = 0.1
        while True:
            try:
                message = await self._pubsub.get_message(timeout=None)
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("redis subscription lost (%s); reconnecting", exc)
                await self._reconnect(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if message is None or message.get("type") != "message":
                continue
            channel = self._from_redis.get(message["channel"])
            if channel is None:
                continue
            for listener in self._listeners:
                try:
                    await listener(channel, message["data"])
                except Exception:
                    log_failure(log, "event listener failed")

    async def _reconnect(self, delay: float) -> None:
        self._subscribed.clear()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        while True:
            await asyncio.sleep(delay)
            try:
                await self._subscribe()
                break
            except (RedisError, OSError):
                delay = min(delay * 2, 5.0)
        for listener in self._gap_listeners:
            try:
                await listener()
            except Exception:
                log_failure(log, "gap listener failed")

    async def publish(self, channel: str, payload: bytes) -> None:
        await self.redis.publish(self._to_redis[channel], payload)

    async def ping(self) -> bool:
        return bool(await self.redis.ping()) and self._subscribed.is_set()

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self.redis is not None:
            await self.redis.aclose()
