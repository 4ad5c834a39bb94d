"""Events after commit: the one line that fans a change out to the people who should see it.

A service calls `emit(session, type, data, user_ids=...)`; nothing leaves until the session's
transaction commits, and a rollback drops it. The broker carries one envelope per event
(`{"users": [...], "event": {...}}`) to every process, and each process's hub hands it to the
connections of those users.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.core.clock import clock
from pigeon.core.db import after_commit

log = logging.getLogger("pigeon.events")

EVENTS_CHANNEL = "pigeon:events"
CONTROL_CHANNEL = "pigeon:control"

Listener = Callable[[str, bytes], Awaitable[None]]


class Event(BaseModel):
    type: str
    data: dict[str, Any]
    id: int | None = None


class Broker(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def publish(self, channel: str, payload: bytes) -> None: ...
    def add_listener(self, listener: Listener) -> None: ...
    async def ping(self) -> bool: ...


class InProcessBroker:
    """Delivers to this process's listeners only: the default, and enough for one process."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def publish(self, channel: str, payload: bytes) -> None:
        for listener in list(self._listeners):
            try:
                await listener(channel, payload)
            except Exception:  # a failing listener must not break the sender
                log.exception("event listener failed")

    async def ping(self) -> bool:
        return True


_broker: Broker = InProcessBroker()


def set_broker(broker: Broker) -> None:
    global _broker
    _broker = broker


def get_broker() -> Broker:
    return _broker


def encode(event: Event, user_ids: Iterable[int]) -> bytes:
    return orjson.dumps(
        {
            "users": sorted(set(user_ids)),
            "event": event.model_dump(mode="json"),
            "sent_at": clock.now().timestamp(),
        }
    )


async def publish(event: Event, *, user_ids: Iterable[int]) -> None:
    users = list(user_ids)
    if users:
        await _broker.publish(EVENTS_CHANNEL, encode(event, users))


async def publish_control(kind: str, data: dict[str, Any] | None = None) -> None:
    await _broker.publish(CONTROL_CHANNEL, orjson.dumps({"kind": kind, "data": data or {}}))


def emit(
    session: AsyncSession,
    type: str,
    data: dict[str, Any],
    *,
    user_ids: Iterable[int],
    id: int | None = None,
) -> None:
    """Queue an event for `user_ids`, published only after `session` commits."""
    event = Event(type=type, data=data, id=id)
    users = list(user_ids)

    async def _send() -> None:
        try:
            await publish(event, user_ids=users)
        except Exception:
            log.exception("publishing %s failed", type)

    after_commit(session, _send)


def emit_control(session: AsyncSession, kind: str, data: dict[str, Any] | None = None) -> None:
    async def _send() -> None:
        try:
            await publish_control(kind, data)
        except Exception:
            log.exception("publishing control %s failed", kind)

    after_commit(session, _send)


def spawn(coro: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run a coroutine in the background, keeping a reference so it is not collected."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


_tasks: set[asyncio.Task[Any]] = set()
