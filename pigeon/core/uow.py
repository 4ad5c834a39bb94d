"""The unit of work: one request's transaction over both databases, and the events it queued.

A request (or a CLI command, or a job) opens one `UnitOfWork`. Services take it, write through
its sessions and flush, never commit; they queue events (`emit`) and control messages
(`control`) on it. One write commits by itself: a send its unit of work has not written the
messaging database before (SQLite's writer thread, PostgreSQL's send at once; `send_tx`), its
events still queued here and its place in the message stream held until the end. The owner
commits once at the end:

1. the messaging database first, then the primary one. The only writes that span both are
   moderation's (a report resolved, then the author suspended), and they are written so that a
   retry after a failure between the two commits finishes the job instead of failing on it;
2. then the places its sends reserved in the message stream are released (`core.stream`),
   committed or not, and what was queued goes to the broker with the new position; the unit
   of work ends once the position has reached its own messages. The clean-ups queued with
   `after_commit` run (files removed once no row names them). A rollback drops it all, and
   runs what was queued with `on_rollback` instead (a file stored for a row that never was).

Sessions open lazily, so a request that writes only one database touches only that one, and on
SQLite a write transaction (BEGIN IMMEDIATE) starts at the first statement, not before.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.core.clock import Clock
from pigeon.core.db import Database, Databases
from pigeon.core.errors import AppError, log_failure
from pigeon.core.events import Control, Event, Publisher
from pigeon.core.stream import Ticket

log = logging.getLogger("pigeon.uow")


class UnitOfWork:
    def __init__(self, dbs: Databases, publisher: Publisher, clock: Clock) -> None:
        self.dbs = dbs
        self.publisher = publisher
        self.clock = clock
        self._app: AsyncSession | None = None
        self._messaging: AsyncSession | None = None
        self._events: list[tuple[Event, list[int], dict[int, int] | None]] = []
        self._controls: list[Control] = []
        self._after: list[Callable[[], Awaitable[None]]] = []
        self._undo: list[Callable[[], Awaitable[None]]] = []
        self._tickets: list[Ticket] = []
        self.committed_some = False  # a database has taken this unit of work's writes

    # --- sessions ---

    @property
    def app(self) -> AsyncSession:
        """The primary database's session for this unit of work."""
        if self._app is None:
            self._app = self.dbs.app.writer()
        return self._app

    @property
    def messaging(self) -> AsyncSession:
        """The messaging database's session for this unit of work."""
        if self._messaging is None:
            self._messaging = self.dbs.messaging.writer()
        return self._messaging

    @asynccontextmanager
    async def read(self, db: Database) -> AsyncIterator[AsyncSession]:
        """A session to read `db` through: this unit of work's own once it has written there
        (so a request reads its own writes), a reader otherwise."""
        own = self._messaging if db is self.dbs.messaging else self._app
        if own is not None:
            yield own
        else:
            async with db.read() as session:
                yield session

    def has_written(self, db: Database) -> bool:
        return (self._messaging if db is self.dbs.messaging else self._app) is not None

    async def reserve(self) -> Ticket:
        """A place in the message stream for a message this unit of work will write, released
        when it commits or rolls back (`core.stream`); the writer sets its `message_id`."""
        ticket = await self.publisher.stream.reserve()
        self._tickets.append(ticket)
        return ticket

    async def give_back(self, ticket: Ticket) -> None:
        """Release one place at once, nothing written under it: a send that found it must
        wait for its turns gives its place back, to reserve one again once it has them."""
        self._tickets.remove(ticket)
        await self.publisher.events((), tickets=[ticket])

    async def _release(self) -> None:
        """Give the places back without a commit (nothing of theirs was written)."""
        tickets, self._tickets = self._tickets, []
        if tickets:
            await self.publisher.events((), tickets=tickets)

    # --- what goes out after the commit ---

    def emit(
        self, event: Event, user_ids: Iterable[int], *, unread: dict[int, int] | None = None
    ) -> None:
        """Publish `event` to these people once the unit of work commits.

        `unread` carries each recipient's new unread total; their connections get an `unread`
        frame beside the event, from the same envelope.
        """
        self._events.append((event, sorted(set(user_ids)), unread))

    def control(self, message: Control) -> None:
        """Tell every process (this one included) once the unit of work commits."""
        self._controls.append(message)

    def after_commit(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` once the unit of work has committed (never if it rolls back). For what
        must not happen before the rows say so, such as removing a file; a failure is logged,
        and whatever it left behind is for the sweeps to find."""
        self._after.append(action)

    def on_rollback(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run `action` if the unit of work rolls back before it starts committing: for what
        was done outside the databases for rows being written, such as a file stored for an
        upload. Once the commit starts it is dropped (a failure part way leaves the file for
        the sweep, never removes one a committed row may name)."""
        self._undo.append(action)

    # --- the end ---

    async def commit(self) -> None:
        """Commit messaging, then primary, then publish what was queued."""
        if any(ticket.expired() for ticket in self._tickets):
            raise StreamLeaseEnded()
        self._undo = []
        for session in (self._messaging, self._app):
            if session is not None:
                await session.commit()
                self.committed_some = True
        tickets, self._tickets = self._tickets, []
        written = max((ticket.message_id for ticket in tickets), default=0)
        controls, events, after = self._controls, self._events, self._after
        self._controls, self._events, self._after = [], [], []
        await self.publisher.controls(controls)
        upto = await self.publisher.events(events, tickets=tickets)
        if written and upto is not None:  # answer once a resume past it would skip nothing
            await self.publisher.stream.wait_for(written)
        for action in after:
            try:
                await action()
            except Exception:
                log_failure(log, "a clean-up after commit failed")

    async def rollback(self) -> None:
        """Undo everything written so far and forget what was queued; usable again after."""
        self._controls, self._events, self._after = [], [], []
        undo, self._undo = self._undo, []
        for session in (self._messaging, self._app):
            if session is not None:
                await session.rollback()
        await self._release()
        for action in undo:
            try:
                await action()
            except Exception:
                log_failure(log, "a clean-up after rollback failed")

    async def close(self) -> None:
        await self._release()  # neither committed nor rolled back: closing undoes the writes
        for session in (self._messaging, self._app):
            if session is not None:
                await session.close()
        self._app = self._messaging = None


class TryAgain(AppError):
    """Nothing was written, and the same request a moment later will most likely succeed."""

    status = 503
    code = "try_again"
    message = "The server was too busy to finish that. Please try again."

    def __init__(self) -> None:
        super().__init__(headers={"Retry-After": "1"})


class StreamLeaseEnded(TryAgain):
    """A send held its place in the message stream for too long to commit safely."""

    message = "The server was too busy to finish that. Please send it again."


class Contended(TryAgain):
    """The database gave up on this transaction for another's sake: a deadlock it broke, a
    serializable snapshot that could not hold, a lock it could not get in time (SQLite's
    "database is locked" once its busy timeout has passed). The transaction was rolled back."""


# PostgreSQL: serialization_failure, deadlock_detected, lock_not_available
_CONTENDED_SQLSTATES = frozenset({"40001", "40P01", "55P03"})


def contended(exc: BaseException) -> bool:
    """Whether `exc` is the database refusing a transaction for another's sake, which the
    same request retried would most likely get past, rather than a fault."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _CONTENDED_SQLSTATES:
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


@asynccontextmanager
async def unit_of_work(
    dbs: Databases, publisher: Publisher, clock: Clock
) -> AsyncIterator[UnitOfWork]:
    """For the CLI, jobs and tests: commit on success, roll back on error."""
    async with owning(UnitOfWork(dbs, publisher, clock)) as uow:
        yield uow


@asynccontextmanager
async def owning(uow: UnitOfWork) -> AsyncIterator[UnitOfWork]:
    """Own a unit of work for the block: commit on success, roll back on error, close. The
    database breaking a deadlock (or the like) is answered `try_again`, not as a fault."""
    try:
        yield uow
        await uow.commit()
    except BaseException as exc:
        await uow.rollback()
        if contended(exc) and not uow.committed_some:
            log.info("a transaction gave way to another: %s", exc.orig)  # type: ignore[attr-defined]
            raise Contended() from exc
        raise
    finally:
        await uow.close()
