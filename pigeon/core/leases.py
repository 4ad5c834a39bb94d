"""Job leases (primary database): exactly one process at a time runs a background job, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy import String, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.clock import Clock
from pigeon.core.db import AppBase, Database, UTCDateTime, rowcount
from pigeon.core.errors import Conflict


class JobLease(AppBase):
    __tablename__ = "job_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


async def acquire_lease(
    db: Database, name: str, holder: str, seconds: float, *, now: dt.datetime
) -> bool:
    until = now + dt.timedelta(seconds=seconds)
    try:
        async with db.write() as session:
            taken = await session.execute(
                update(JobLease)
                .where(JobLease.name == name)
                .where((JobLease.expires_at < now) | (JobLease.holder == holder))
                .values(holder=holder, expires_at=until)
            )
            if rowcount(taken):
                return True
            if await session.get(JobLease, name) is not None:
                return False
            session.add(JobLease(name=name, holder=holder, expires_at=until))
    except IntegrityError:  # another process inserted the lease first
        return False
    return True


async def release_lease(db: Database, name: str, holder: str) -> None:
    async with db.write() as session:
        await session.execute(
            delete(JobLease).where(JobLease.name == name, JobLease.holder == holder)
        )


def holder_id() -> str:
    """Who holds a lease: this machine, this process, and a random part for a second holder in
    the same process (a CLI run beside the server's own job in tests)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def held(
    db: Database, name: str, holder: str, seconds: float, *, clock: Clock, busy: Conflict
) -> AsyncIterator[Callable[[], Awaitable[None]]]:
    """Hold the lease `name` for the block, or raise `busy` when another holder has it; yields
    `renew`, for a long job to call as it goes. Released on leaving, however it is left."""
    if not await acquire_lease(db, name, holder, seconds, now=clock.now()):
        raise busy

    async def renew() -> None:
        await acquire_lease(db, name, holder, seconds, now=clock.now())

    try:
        yield renew
    finally:
        await release_lease(db, name, holder)
