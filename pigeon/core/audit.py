"""The audit log (primary database): who changed what and when, written in the change's own
transaction so that an entry exists exactly when the change does."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import AppBase, UTCDateTime
from pigeon.core.uow import UnitOfWork


class AuditLog(AppBase):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_label: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    target_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_audit_log_created_at", "created_at"),
        Index("ix_audit_log_action", "action"),
        Index("ix_audit_log_actor_id", "actor_id"),
    )


def audit(
    uow: UnitOfWork,
    action: str,
    *,
    actor_id: int | None,
    actor_label: str,
    target_type: str | None = None,
    target_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    uow.app.add(
        AuditLog(
            created_at=uow.clock.now(),
            actor_id=actor_id,
            actor_label=actor_label,
            action=action,
            target_type=target_type,
            target_id=target_id,
            data=data or {},
        )
    )


def audit_user_changes(
    uow: UnitOfWork,
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
            uow,
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


async def logged(
    session: AsyncSession, action: str, *, target_type: str, target_ids: Collection[int]
) -> bool:
    """Whether `action` was logged for any of these targets."""
    found = await session.scalar(
        select(AuditLog.id)
        .where(
            AuditLog.action == action,
            AuditLog.target_type == target_type,
            AuditLog.target_id.in_(target_ids),
        )
        .limit(1)
    )
    return found is not None
