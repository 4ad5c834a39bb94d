"""Reading invitations: the ones staff sent (by state) and one's own pending ones. The rules of
who sees what are here once, for the API and the pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import service as accounts
from pigeon.accounts.invitations import State, pending
from pigeon.accounts.models import Community, Invitation
from pigeon.core.errors import NotAllowed
from pigeon.core.principal import Principal


def _in_state(state: State, now: dt.datetime) -> ColumnElement[bool]:
    if state == "pending":
        return pending(now)
    if state == "accepted":
        return Invitation.used_at.is_not(None)
    open_ = and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
    if state == "revoked":
        return and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_not(None))
    if state == "declined":
        return and_(open_, Invitation.declined_at.is_not(None))
    return and_(open_, Invitation.declined_at.is_(None), Invitation.expires_at <= now)


async def list_sent(
    session: AsyncSession,
    viewer: Principal,
    now: dt.datetime,
    *,
    state: State | None = None,
    limit: int = 100,
) -> Sequence[Invitation]:
    """Admins see every invitation; managers those of their communities; newest first."""
    if not viewer.is_staff:
        raise NotAllowed("Only admins and managers see invitations.", code="staff_only")
    stmt = select(Invitation).order_by(Invitation.id.desc()).limit(limit)
    if not viewer.is_admin:
        stmt = stmt.where(Invitation.community_id.in_(viewer.community_ids or {-1}))
    if state is not None:
        stmt = stmt.where(_in_state(state, now))
    return (await session.scalars(stmt)).all()


async def list_mine(
    session: AsyncSession, viewer: Principal, now: dt.datetime
) -> Sequence[Invitation]:
    """The pending invitations sent to the signed-in person's address."""
    user = await accounts.get_user(session, viewer.id)
    stmt = (
        select(Invitation)
        .where(Invitation.email == accounts.normalize_email(user.email), pending(now))
        .order_by(Invitation.id)
    )
    return (await session.scalars(stmt)).all()


async def community_names(
    session: AsyncSession, rows: Sequence[Invitation]
) -> dict[int, Community]:
    """The communities a page of invitations names, in one query."""
    ids = {row.community_id for row in rows}
    if not ids:
        return {}
    found = await session.scalars(select(Community).where(Community.id.in_(ids)))
    return {c.id: c for c in found}
