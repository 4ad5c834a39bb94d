"""Job leases (primary database): exactly one process at a time runs a background job, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import String, delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import AppBase, Database, UTCDateTime, rowcount


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
