"""What one running app keeps between requests: built in its lifespan, dropped with it.

The databases, the media store, the broker and what publishes to it, the clock, the caches
(run-time settings, people, sign-ins), the rate limiter, tokens, password hashing, and how a
request is authenticated. The send path and the hub live beside it on the app's state. A test
that builds a fresh app gets all of it fresh.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import text

from pigeon.core.blobs import MediaStore
from pigeon.core.clock import Clock
from pigeon.core.db import Databases
from pigeon.core.errors import Unauthorized
from pigeon.core.events import EVENTS_CHANNEL, Broker, Publisher
from pigeon.core.people import PeopleCache
from pigeon.core.principal import Principal
from pigeon.core.ratelimit import Limiter
from pigeon.core.security import Passwords, Tokens
from pigeon.core.stream import make_stream
from pigeon.core.switches import Switches
from pigeon.core.uow import UnitOfWork, unit_of_work
from pigeon.settings import Settings

MAX_REMEMBERED_SIGNINS = 100_000
# how long a process believes what it read of a person or a sign-in: with no Redis between
# processes (a change made from the CLI is not announced to a running server), and with Redis
REMEMBER = 10.0
REMEMBER_ANNOUNCED = 60.0
_NEWEST_MESSAGE = text("SELECT max(id) FROM message")  # core knows no messaging model


class Runtime:
    def __init__(
        self,
        settings: Settings,
        dbs: Databases,
        broker: Broker,
        media: MediaStore,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.dbs = dbs
        self.broker = broker
        self.media = media
        # decoding images and making thumbnails: a few at a time, off the event loop
        self.media_work = asyncio.Semaphore(max(1, (os.cpu_count() or 2) // 2))
        self.clock = clock = clock or Clock()
        # where messages are settled up to (`core.stream`): ordered on SQLite; on PostgreSQL
        # places kept in Redis when the broker is Redis (its client exists once it starts)
        redis, channel = None, ""
        naming = getattr(broker, "redis_channel", None)
        if naming is not None:
            redis, channel = (lambda: broker.redis), naming(EVENTS_CHANNEL)  # type: ignore[attr-defined]
            broker.add_gap_listener(self.forget_everyone)  # type: ignore[attr-defined]
        self.stream = make_stream(
            dbs.messaging.dialect, self._newest_message, redis, settings.redis_prefix, channel
        )
        self.publisher = Publisher(broker, lambda: clock.now().timestamp(), self.stream)
        self.switches = Switches(dbs.app, settings.settings_cache_seconds, clock)
        self.limiter = Limiter(settings, clock)
        self.tokens = Tokens(settings, clock)
        # who people are and which sign-ins are live, believed for `remember` seconds: every
        # change is announced on commit and forgotten at once; the expiry bounds what a lost
        # announcement leaves stale. Across Redis, announcements are lost only with the
        # subscription, and a new one forgets everything (`forget_everyone`): a longer spell
        # spares the database a read of every sender and recipient every few seconds.
        self.remember = REMEMBER_ANNOUNCED if naming is not None else REMEMBER
        self.people = PeopleCache(clock, self.remember)
        self.passwords = Passwords(
            time_cost=settings.password_hash_time_cost,
            memory_kib=settings.password_hash_memory_kib,
            concurrency=settings.password_hash_concurrency,
        )
        # sign-ins (token families) known to be revoked; a revocation is final, so forgetting
        # them (when there are too many) only costs a read the next time one is presented;
        # those lately read as live are `people.signins`
        self.revoked_signins: set[str] = set()
        # (bearer token, session cookie) -> who is asking; auth installs the real one
        self.authenticate: Callable[[str | None, str | None], Awaitable[Principal]] = _nobody

    async def _newest_message(self) -> int:
        """Where the message stream's position starts (`core.stream`); a server starts it
        once its broker has (the Redis client is the broker's), the CLI at its first send."""
        from pigeon.core import migrate

        if not await migrate.exists(self.dbs.messaging):  # messaging never switched on yet
            return 0
        async with self.dbs.messaging.read() as session:
            return int(await session.scalar(_NEWEST_MESSAGE) or 0)

    async def forget_everyone(self) -> None:
        """The broker may have dropped announcements (its subscription was lost and is back):
        read people and sign-ins afresh."""
        self.people.clear()

    def signins_ended(self, family_ids: Iterable[str]) -> None:
        ended = list(family_ids)
        if len(self.revoked_signins) > MAX_REMEMBERED_SIGNINS:
            self.revoked_signins.clear()
        self.revoked_signins.update(ended)
        self.people.signins.forget(ended)

    def uow(self) -> UnitOfWork:
        """A unit of work for one request; its owner commits it (`core.deps.get_uow`)."""
        return UnitOfWork(self.dbs, self.publisher, self.clock)

    def uow_scope(self) -> AbstractAsyncContextManager[UnitOfWork]:
        """A unit of work that commits on leaving the block: for the CLI, jobs and tests."""
        return unit_of_work(self.dbs, self.publisher, self.clock)

    async def close(self) -> None:
        self.passwords.close()
        await self.limiter.store.close()
        await self.media.close()


async def _nobody(token: str | None, cookie: str | None) -> Principal:
    raise Unauthorized("Sign in to continue.", code="not_authenticated")
