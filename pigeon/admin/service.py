"""Run-time settings (the messaging switch), the audit log, and job leases.

The switch is read on every messaging request, so each process caches it for at most
`settings_cache_seconds` (1 s) and drops the cache at once when a `settings.changed` control
message arrives from any process.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.admin.models import AuditLog, JobLease, Setting
from pigeon.core import migrate
from pigeon.core.clock import clock
from pigeon.core.db import Database, Databases
from pigeon.core.events import emit_control

MESSAGING_ENABLED = "messaging_enabled"

_cache: dict[str, tuple[float, Any]] = {}
_cache_seconds = 1.0


def configure_cache(seconds: float) -> None:
    global _cache_seconds
    _cache_seconds = seconds


def invalidate(key: str | None = None) -> None:
    if key is None:
        _cache.clear()
    else:
        _cache.pop(key, None)


async def get_setting(db: Database, key: str, default: Any = None) -> Any:
    hit = _cache.get(key)
    if hit and hit[0] > clock.monotonic():
        return hit[1]
    row = await db.run_read(
        lambda conn: conn.execute(select(Setting.value).where(Setting.key == key)).first()
    )
    value = default if row is None else row.value
    _cache[key] = (clock.monotonic() + _cache_seconds, value)
    return value


async def messaging_enabled(db: Database) -> bool:
    return bool(await get_setting(db, MESSAGING_ENABLED, False))


async def set_setting(session: AsyncSession, key: str, value: Any, *, actor_id: int | None) -> Any:
    """Store a setting; returns the previous value. Other processes hear of it after commit."""
    row = await session.get(Setting, key)
    before = None if row is None else row.value
    if row is None:
        session.add(Setting(key=key, value=value, updated_at=clock.now(), updated_by=actor_id))
    else:
        row.value, row.updated_at, row.updated_by = value, clock.now(), actor_id
    await session.flush()
    invalidate(key)
    emit_control(session, "settings.changed", {"key": key, "value": value})
    return before


async def setting_row(db: Database, key: str) -> Setting | None:
    async with db.read() as session:
        return await session.get(Setting, key)


# --- audit log ---


def audit(
    session: AsyncSession,
    action: str,
    *,
    actor_id: int | None,
    actor_label: str,
    target_type: str | None = None,
    target_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            created_at=clock.now(),
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            data=data or {},
        )
    )


def audit_user_changes(
    session: AsyncSession,
    changes: dict[str, tuple[object, object]],
    *,
    actor_id: int | None,
    actor_label: str,
    user_id: int,
    username: str,
) -> None:
    """One audit entry per changed field of a user (tier, role, is_active, suspension)."""
    for field, (before, after) in changes.items():
        audit(
            session,
            f"user.{field}",
            actor_id=actor_id,
            actor_label=actor_label,
            target_type="user",
            target_id=user_id,
            data={"before": before, "after": after, "username": username},
        )


async def list_audit(
    session: AsyncSession,
    *,
    actor_id: int | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Sequence[AuditLog]:
    stmt = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if actor_id is not None:
        stmt = stmt.where(AuditLog.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditLog.action == action)
    if since:
        stmt = stmt.where(AuditLog.created_at >= since)
    if until:
        stmt = stmt.where(AuditLog.created_at < until)
    if before_id:
        stmt = stmt.where(AuditLog.id < before_id)
    return (await session.scalars(stmt)).all()


# --- job leases: one process at a time, on SQLite and PostgreSQL alike ---


async def acquire_lease(db: Database, name: str, holder: str, seconds: float) -> bool:
    now = clock.now()
    until = now + dt.timedelta(seconds=seconds)
    try:
        async with db.write() as session:
            taken = await session.execute(
                update(JobLease)
                .where(JobLease.name == name)
                .where((JobLease.expires_at < now) | (JobLease.holder == holder))
                .values(holder=holder, expires_at=until)
            )
            if taken.rowcount:
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


# --- the messaging switch ---


async def set_messaging(
    dbs: Databases, enabled: bool, *, actor_id: int | None, actor_label: str
) -> bool:
    """Turn messaging on or off; on creates or upgrades the messaging database first.

    Returns whether the value changed. Every call is audited, including no-op ones, so the log
    shows who asked for what and when. Turning it off deletes nothing.
    """
    if enabled:
        await migrate.upgrade(dbs.messaging)
    async with dbs.app.write() as session:
        before = bool(await set_setting(session, MESSAGING_ENABLED, enabled, actor_id=actor_id))
        audit(
            session,
            "messaging.enabled" if enabled else "messaging.disabled",
            actor_id=actor_id,
            actor_label=actor_label,
            target_type="setting",
            data={"key": MESSAGING_ENABLED, "before": before, "after": enabled},
        )
    return before != enabled
