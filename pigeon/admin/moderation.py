"""The moderation queue and suspensions.

Admins see every report; managers and owners see the reports of their communities only (a
report belongs to a community the reporter and the author share). Resolving a report resolves
every open report on the same message with the same action, and each resolution and suspension
goes to the audit log. A suspension ends every sign-in of the person; their tokens stop working
at once in every process (the change is announced after commit).

Resolving writes both databases, messaging first: if the primary database fails after that,
resolving the same report again with the same action finishes the job (the suspension and its
audit entry) instead of answering "already resolved".
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from pigeon.accounts import directory
from pigeon.accounts import service as accounts
from pigeon.auth import service as auth
from pigeon.core import migrate
from pigeon.core.audit import audit, logged
from pigeon.core.errors import Conflict, Invalid, NotAllowed, NotFound
from pigeon.core.events import PeopleChanged
from pigeon.core.principal import Principal, outranks
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork
from pigeon.media.serving import Served
from pigeon.messaging import reports
from pigeon.messaging.attachments import served
from pigeon.messaging.context import Ctx

ACTIONS = ("dismiss", "delete_message", "suspend_author")
# "until further notice": a suspension with no end is one that ends after everyone has gone
FOREVER = dt.datetime(9999, 12, 31, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True, slots=True)
class Person:
    id: int
    username: str | None
    display_name: str
    suspended_until: dt.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class QueueItem:
    """A report as a moderator sees it, with the people involved."""

    entry: reports.QueueEntry
    reporter: Person
    author: Person
    resolved_by: Person | None

    def view(self) -> dict[str, Any]:
        r = self.entry.report
        return {
            "id": r.id,
            "message_id": r.message_id,
            "conversation_id": r.conversation_id,
            "community_id": r.community_id,
            "reason": r.reason,
            "details": r.details,
            "body": r.body_copy,
            "message_created_at": r.message_created_at,
            "message_state": self.entry.message_state,
            "reports_on_message": self.entry.reports_on_message,
            "reporter": dataclasses.asdict(self.reporter),
            "author": dataclasses.asdict(self.author),
            "status": r.status,
            "action": r.action,
            "created_at": r.created_at,
            "resolved_at": r.resolved_at,
            "resolved_by": dataclasses.asdict(self.resolved_by) if self.resolved_by else None,
            "attachments": self.entry.attachments,
        }


def check_moderator(viewer: Principal) -> None:
    if not viewer.is_staff:
        raise NotAllowed("Only managers and admins can moderate.", code="staff_only")


def _scope(viewer: Principal) -> frozenset[int] | None:
    return None if viewer.is_admin else viewer.community_ids


def _in_scope(viewer: Principal, community_id: int | None) -> bool:
    return viewer.is_admin or (community_id is not None and community_id in viewer.community_ids)


async def list_reports(
    uow: UnitOfWork,
    viewer: Principal,
    *,
    status: str = "open",
    before_id: int | None = None,
    limit: int = 50,
) -> list[QueueItem]:
    """The queue, newest first, with the reported text and who is involved."""
    check_moderator(viewer)
    if not await migrate.exists(uow.dbs.messaging):  # messaging never on: nothing reported
        return []
    async with uow.read(uow.dbs.messaging) as session:
        entries = await reports.queue(
            session, communities=_scope(viewer), status=status, before_id=before_id, limit=limit
        )
    return await _items(uow, entries)


async def get_report(uow: UnitOfWork, viewer: Principal, report_id: int) -> QueueItem:
    """One report; within a unit of work that changed it, as it now stands."""
    check_moderator(viewer)
    entry = await _entry(uow, viewer, report_id)
    return (await _items(uow, [entry]))[0]


async def report_file(
    uow: UnitOfWork, viewer: Principal, report_id: int, attachment_id: int, *, thumbnail: bool
) -> Served:
    """A file of a reported message, for the moderators who see the report: kept until the
    report is resolved, even if its uploader removed it meanwhile."""
    check_moderator(viewer)
    entry = await _entry(uow, viewer, report_id)
    async with uow.read(uow.dbs.messaging) as session:
        found = await reports.held_attachment(session, entry.report, attachment_id)
    return served(found, thumbnail=thumbnail)


async def _entry(uow: UnitOfWork, viewer: Principal, report_id: int) -> reports.QueueEntry:
    if not await migrate.exists(uow.dbs.messaging):
        raise NotFound("No such report.", code="report_not_found")
    async with uow.read(uow.dbs.messaging) as session:
        entry = await reports.find_report(session, report_id)
    if entry is None or not _in_scope(viewer, entry.report.community_id):
        raise NotFound("No such report.", code="report_not_found")
    return entry


async def _items(uow: UnitOfWork, entries: list[reports.QueueEntry]) -> list[QueueItem]:
    """People in one query for the whole page."""
    ids = {e.report.reporter_id for e in entries} | {e.report.author_id for e in entries}
    ids |= {e.report.resolved_by for e in entries if e.report.resolved_by}
    async with uow.read(uow.dbs.app) as session:
        users = await accounts.users_by_ids(session, ids)

    def person(user_id: int) -> Person:
        u = users.get(user_id)
        if u is None:
            return Person(user_id, None, "(gone)", None)
        return Person(user_id, u.username, u.display_name, u.suspended_until)

    return [
        QueueItem(
            e,
            person(e.report.reporter_id),
            person(e.report.author_id),
            person(e.report.resolved_by) if e.report.resolved_by else None,
        )
        for e in entries
    ]


async def resolve(
    ctx: Ctx,
    report_id: int,
    *,
    action: str,
    until: dt.datetime | None = None,
    note: str = "",
) -> QueueItem:
    """Close a report (and every open report on the same message) with an action."""
    viewer, uow = ctx.viewer, ctx.uow
    check_moderator(viewer)
    if action not in ACTIONS:
        raise Invalid(f"action must be one of {', '.join(ACTIONS)}.", fields={"action": "unknown"})
    entry = await _entry(uow, viewer, report_id)
    report = entry.report
    if action == "delete_message" and report.message_id is None:
        raise Invalid(
            "This report is on a person, not a message: dismiss it or suspend them.",
            fields={"action": "no message to delete"},
        )
    if action == "suspend_author":
        until = _check_until(until, uow.clock.now())
        author = await directory.get_principal(ctx.rt, report.author_id)
        if author is not None:
            check_can_suspend(viewer, author)
    if report.status != "open":
        if not await _unfinished(uow, report, action):
            raise Conflict("This report was already resolved.", code="report_resolved")
        closed = [report.id]  # an earlier try resolved it; finish what it left undone
    else:
        found = await reports.close_reports(ctx, report, action=action, now=uow.clock.now())
        if found is None:
            raise Conflict("This report was already resolved.", code="report_resolved")
        closed = found
    if action == "suspend_author":
        await _suspend(uow, viewer, report.author_id, until=until, reason=note, report_id=report_id)
    audit(
        uow,
        "report.resolved",
        actor_id=viewer.id,
        actor_label=viewer.username,
        target_type="report",
        target_id=report_id,
        data={
            "action": action,
            "message_id": report.message_id,
            "author_id": report.author_id,
            "reports": sorted(closed),
            "reason": report.reason,
            "note": note,
            "until": until.isoformat() if until else None,
        },
    )
    return await get_report(uow, viewer, report_id)


async def _unfinished(uow: UnitOfWork, report: Any, action: str) -> bool:
    """A report resolved with this action whose primary-database half never committed: no
    audit entry for any of the reports closed with it."""
    if report.action != action:
        return False
    async with uow.read(uow.dbs.messaging) as session:
        batch = await reports.closed_together(session, report)
    return not await logged(uow.app, "report.resolved", target_type="report", target_ids=batch)


def _check_until(until: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    if until is None:
        return FOREVER
    if until.tzinfo is None:
        until = until.replace(tzinfo=dt.UTC)
    if until <= now:
        raise Invalid("A suspension must end in the future.", fields={"until": "in the past"})
    return until


def check_can_suspend(actor: Principal, target: Principal) -> None:
    """Whom a moderator may suspend or reinstate: not themselves; a manager or owner only
    people in a community they share (anyone else is as if they did not exist), and only those
    of lower rank (never staff of their own rank or above); an admin anyone else."""
    if target.id == actor.id:
        raise NotAllowed("You cannot suspend yourself.", code="cannot_change_self")
    if not actor.is_admin and not (actor.community_ids & target.community_ids):
        raise NotFound("No such user.", code="user_not_found")
    if not outranks(actor, target):
        raise NotAllowed("Only admins can suspend managers and admins.", code="admin_only")


def can_suspend(actor: Principal, target: Principal) -> bool:
    """Whether the pages should offer `actor` to suspend or reinstate `target`: the same rules
    as `check_can_suspend`, which still decides when the form is sent."""
    if not actor.is_staff:
        return False
    try:
        check_can_suspend(actor, target)
    except (NotAllowed, NotFound):
        return False
    return True


async def _suspend(
    uow: UnitOfWork,
    actor: Principal,
    user_id: int,
    *,
    until: dt.datetime | None,
    reason: str = "",
    report_id: int | None = None,
) -> None:
    """Set or lift (until=None) a suspension, end the person's sign-ins, audit it."""
    target = await accounts.get_user(uow.app, user_id)
    await accounts.set_tier_role(uow, target, suspended_until=until)
    if until is not None:
        await auth.revoke_user(uow, user_id)
    audit(
        uow,
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
    uow.control(PeopleChanged(user_ids=[user_id]))


async def suspend(
    rt: Runtime,
    uow: UnitOfWork,
    actor: Principal,
    user_id: int,
    *,
    until: dt.datetime | None,
    reason: str = "",
) -> dt.datetime:
    """Suspend someone directly (not through a report); no `until` means until lifted."""
    await _check_target(rt, actor, user_id)
    until = _check_until(until, uow.clock.now())
    await _suspend(uow, actor, user_id, until=until, reason=reason)
    return until


async def _check_target(rt: Runtime, actor: Principal, user_id: int) -> None:
    check_moderator(actor)
    target = await directory.get_principal(rt, user_id)
    if target is None:
        raise NotFound("No such user.", code="user_not_found")
    check_can_suspend(actor, target)


async def unsuspend(rt: Runtime, uow: UnitOfWork, actor: Principal, user_id: int) -> None:
    await _check_target(rt, actor, user_id)
    await _suspend(uow, actor, user_id, until=None)
