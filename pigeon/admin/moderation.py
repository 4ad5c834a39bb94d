"""The moderation queue and suspensions.

Admins see every report; managers and owners see the reports of their communities only (a
report belongs to a community the reporter and the author share). Resolving a report resolves
every open report on the same message with the same action, and each resolution and suspension
goes to the audit log. A suspension ends every sign-in of the person; their access tokens stop
working within a second (the principal cache's lifetime) on every process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from pigeon.accounts import service as accounts
from pigeon.accounts.service import Principal
from pigeon.admin import service as admin
from pigeon.auth import service as auth
from pigeon.core.clock import clock
from pigeon.core.db import Databases
from pigeon.core.errors import Conflict, Invalid, NotAllowed, NotFound
from pigeon.core.events import emit_control
from pigeon.messaging import changes
from pigeon.messaging.reports import R
from pigeon.messaging.service import M

ACTIONS = ("dismiss", "delete_message", "suspend_author")
# "until further notice": a suspension with no end is one that ends after everyone has gone
FOREVER = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)


def check_moderator(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise NotAllowed("Only managers and admins can moderate.", code="staff_only")


def _in_scope(viewer: Principal, community_id: int | None) -> bool:
    return viewer.is_admin or (community_id is not None and community_id in viewer.community_ids)


async def list_reports(
    dbs: Databases,
    viewer: Principal,
    *,
    status: str = "open",
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The queue, newest first, with the reported text and who is involved."""
    check_moderator(viewer)
    stmt = select(R).order_by(R.c.id.desc()).limit(limit)
    if status != "all":
        stmt = stmt.where(R.c.status == status)
    if before_id is not None:
        stmt = stmt.where(R.c.id < before_id)
    if not viewer.is_admin:
        stmt = stmt.where(R.c.community_id.in_(viewer.community_ids or {-1}))
    async with dbs.messaging.read() as session:
        rows = (await session.execute(stmt)).all()
    return await _views(dbs, rows)


async def get_report(dbs: Databases, viewer: Principal, report_id: int) -> dict[str, Any]:
    check_moderator(viewer)
    row = await _report_row(dbs, viewer, report_id)
    return (await _views(dbs, [row]))[0]


async def _report_row(dbs: Databases, viewer: Principal, report_id: int) -> Any:
    async with dbs.messaging.read() as session:
        row = (await session.execute(select(R).where(R.c.id == report_id))).first()
    if row is None or not _in_scope(viewer, row.community_id):
        raise NotFound("No such report.", code="report_not_found")
    return row


async def _views(dbs: Databases, rows: list[Any]) -> list[dict[str, Any]]:
    """Shape reports: people in one query per database, message state and report counts too."""
    if not rows:
        return []
    message_ids = {r.message_id for r in rows}
    async with dbs.messaging.read() as session:
        live = {
            m.id: m.deleted_at
            for m in (
                await session.execute(select(M.c.id, M.c.deleted_at).where(M.c.id.in_(message_ids)))
            ).all()
        }
        reporters = (
            await session.execute(
                select(R.c.message_id, R.c.reporter_id).where(R.c.message_id.in_(message_ids))
            )
        ).all()
    counts: dict[int, int] = {}
    for r in reporters:
        counts[r.message_id] = counts.get(r.message_id, 0) + 1
    people_ids = {r.reporter_id for r in rows} | {r.author_id for r in rows}
    people_ids |= {r.resolved_by for r in rows if r.resolved_by}
    async with dbs.app.read() as session:
        users = await accounts.users_by_ids(session, people_ids)

    def person(user_id: int | None) -> dict[str, Any] | None:
        if user_id is None:
            return None
        u = users.get(user_id)
        return {
            "id": user_id,
            "username": u.username if u else None,
            "display_name": u.display_name if u else "(gone)",
            "suspended_until": u.suspended_until if u else None,
        }

    return [
        {
            "id": r.id,
            "message_id": r.message_id,
            "conversation_id": r.conversation_id,
            "community_id": r.community_id,
            "reason": r.reason,
            "details": r.details,
            "body": r.body_copy,
            "message_created_at": r.message_created_at,
            "message_state": (
                "removed"
                if r.message_id not in live
                else "deleted"
                if live[r.message_id] is not None
                else "visible"
            ),
            "reports_on_message": counts.get(r.message_id, 1),
            "reporter": person(r.reporter_id),
            "author": person(r.author_id),
            "status": r.status,
            "action": r.action,
            "created_at": r.created_at,
            "resolved_at": r.resolved_at,
            "resolved_by": person(r.resolved_by),
        }
        for r in rows
    ]


async def resolve(
    dbs: Databases,
    viewer: Principal,
    report_id: int,
    *,
    action: str,
    until: dt.datetime | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Close a report (and every open report on the same message) with an action."""
    check_moderator(viewer)
    if action not in ACTIONS:
        raise Invalid(f"action must be one of {', '.join(ACTIONS)}.", fields={"action": "unknown"})
    row = await _report_row(dbs, viewer, report_id)
    if row.status != "open":
        raise Conflict("This report was already resolved.", code="report_resolved")
    if action == "suspend_author":
        until = _check_until(until)
        async with dbs.app.read() as session:
            author = await accounts.principal(session, row.author_id)
        if author is not None:
            check_can_suspend(viewer, author)
    now = clock.now()
    async with dbs.messaging.write() as session:
        closed = (
            (
                await session.execute(
                    update(R)
                    .where(R.c.message_id == row.message_id, R.c.status == "open")
                    .values(
                        status="resolved", action=action, resolved_at=now, resolved_by=viewer.id
                    )
                    .returning(R.c.id)
                )
            )
            .scalars()
            .all()
        )
        if report_id not in closed:  # another moderator resolved it a moment ago
            raise Conflict("This report was already resolved.", code="report_resolved")
        if action == "delete_message":
            message = (await session.execute(select(M).where(M.c.id == row.message_id))).first()
            if message is not None and message.deleted_at is None:
                await changes.tombstone(session, message, dbs=dbs)
    async with dbs.app.write() as session:
        if action == "suspend_author":
            await _suspend(
                session, viewer, row.author_id, until=until, reason=note, report_id=report_id
            )
        admin.audit(
            session,
            "report.resolved",
            actor_id=viewer.id,
            actor_label=viewer.username,
            target_type="report",
            target_id=report_id,
            data={
                "action": action,
                "message_id": row.message_id,
                "author_id": row.author_id,
                "reports": sorted(closed),
                "reason": row.reason,
                "note": note,
                "until": until.isoformat() if until else None,
            },
        )
    return await get_report(dbs, viewer, report_id)


def _check_until(until: dt.datetime | None) -> dt.datetime:
    if until is None:
        return FOREVER
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    if until <= clock.now():
        raise Invalid("A suspension must end in the future.", fields={"until": "in the past"})
    return until


def check_can_suspend(actor: Principal, target: Principal) -> None:
    if target.id == actor.id:
        raise NotAllowed("You cannot suspend yourself.", code="cannot_change_self")
    if target.is_staff and not actor.is_admin:
        raise NotAllowed("Only admins can suspend managers and admins.", code="admin_only")
    if not actor.is_admin and not (actor.community_ids & target.community_ids):
        raise NotFound("No such user.", code="user_not_found")


async def _suspend(
    session: Any,
    actor: Principal,
    user_id: int,
    *,
    until: dt.datetime | None,
    reason: str = "",
    report_id: int | None = None,
) -> None:
    """Set or lift (until=None) a suspension, end the person's sign-ins, audit it."""
    target = await accounts.get_user(session, user_id)
    await accounts.set_tier_role(session, target, suspended_until=until)
    if until is not None:
        await auth.revoke_user(session, user_id)
    admin.audit(
        session,
        "user.suspended" if until else "user.unsuspended",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="user",
        target_id=user_id,
        data={
            "username": target.username,
            "until": until.isoformat() if until else None,
            "reason": reason,
            "report_id": report_id,
        },
    )
    emit_control(
        session,
        "user.suspended" if until else "user.unsuspended",
        {"user_id": user_id, "until": until.isoformat() if until else None},
    )


async def suspend(
    dbs: Databases, actor: Principal, user_id: int, *, until: dt.datetime | None, reason: str = ""
) -> dt.datetime:
    """Suspend someone directly (not through a report); no `until` means until lifted."""
    await _check_target(dbs, actor, user_id)
    until = _check_until(until)
    async with dbs.app.write() as session:
        await _suspend(session, actor, user_id, until=until, reason=reason)
    return until


async def _check_target(dbs: Databases, actor: Principal, user_id: int) -> None:
    check_moderator(actor)
    target = await accounts.get_principal(dbs.app, user_id)
    if target is None:
        raise NotFound("No such user.", code="user_not_found")
    check_can_suspend(actor, target)


async def unsuspend(dbs: Databases, actor: Principal, user_id: int) -> None:
    await _check_target(dbs, actor, user_id)
    async with dbs.app.write() as session:
        await _suspend(session, actor, user_id, until=None)
