"""Reports: anyone who can see a message may report it to the moderators.

A report keeps a copy of the message as it was reported (`body_copy`), so what moderators judge
survives the author deleting or editing it and the retention job removing it; the purge skips
messages under an open report. One person reporting the same message again updates their report
instead of adding another (unique message_id, reporter_id). The moderation queue (`admin`) reads
and closes reports through the functions here; nothing else touches these rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import directory
from pigeon.core.errors import NotAllowed, NotFound
from pigeon.messaging import policy
from pigeon.messaging.changes import tombstone
from pigeon.messaging.context import Ctx
from pigeon.messaging.models import Attachment, Message, Report
from pigeon.messaging.schemas import AttachmentOut
from pigeon.messaging.service import _insert, access_message, require_enabled

REASONS = (
    "spam",
    "harassment",
    "hate",
    "violence",
    "sexual",
    "self_harm",
    "impersonation",
    "other",
)
# what became of the reported message; "person" for a report on someone, not a message
MessageState = Literal["visible", "deleted", "removed", "person"]


async def _community_of(ctx: Ctx, author_id: int) -> int | None:
    """The community whose managers see the report: one reporter and author share."""
    author = await directory.get_principal(ctx.rt, author_id)
    if author is None:
        return min(ctx.viewer.community_ids, default=None)
    shared = ctx.viewer.community_ids & author.community_ids
    return min(shared or author.community_ids or ctx.viewer.community_ids, default=None)


async def report_message(
    ctx: Ctx, message_id: int, *, reason: str, details: str = ""
) -> tuple[Report, bool]:
    """File (or update) the viewer's report on a message; returns (report, created)."""
    await ctx.rt.limiter.hit("report", ctx.viewer.id)
    await require_enabled(ctx)
    row = await access_message(ctx, message_id)
    if row.sender_id == ctx.viewer.id:
        raise NotAllowed("You cannot report your own message.", code="cannot_report_own_message")
    community_id = await _community_of(ctx, row.sender_id)
    session = ctx.uow.messaging
    created_id = await session.scalar(
        _insert(ctx)(Report)
        .values(
            message_id=row.id,
            conversation_id=row.conversation_id,
            reporter_id=ctx.viewer.id,
            author_id=row.sender_id,
            community_id=community_id,
            reason=reason,
            details=details,
            body_copy=row.body,
            message_created_at=row.created_at,
            status="open",
            created_at=ctx.rt.clock.now(),
        )
        .on_conflict_do_nothing(index_elements=["message_id", "reporter_id"])
        .returning(Report.id)
    )
    report = await session.scalar(
        select(Report).where(Report.message_id == message_id, Report.reporter_id == ctx.viewer.id)
    )
    assert report is not None
    if created_id is None and report.status == "open":
        # reported before by this person: the newer reason, and the new details added
        if details and details not in report.details:
            report.details = (f"{report.details}\n{details}" if report.details else details)[:4000]
        report.reason = reason
        await session.flush()
    return report, created_id is not None


async def report_person(
    ctx: Ctx, user_id: int, *, reason: str, details: str = ""
) -> tuple[Report, bool]:
    """File (or update) the viewer's report on a person they can see (someone in one of their
    communities; anyone else is answered as if they did not exist); returns (report,
    created). It joins the same queue as reports on messages."""
    await ctx.rt.limiter.hit("report", ctx.viewer.id)
    await require_enabled(ctx)
    if user_id == ctx.viewer.id:
        raise NotAllowed("You cannot report yourself.", code="cannot_report_yourself")
    person = await directory.get_principal(ctx.rt, user_id)
    if person is None or not policy.visible_to(ctx.viewer, person):
        raise NotFound("No such user.", code="user_not_found")
    session = ctx.uow.messaging
    report = await session.scalar(
        select(Report).where(
            Report.reporter_id == ctx.viewer.id,
            Report.author_id == user_id,
            Report.message_id.is_(None),
            Report.status == "open",
        )
    )
    if report is not None:  # reported before and still open: the newer reason, details added
        if details and details not in report.details:
            report.details = (f"{report.details}\n{details}" if report.details else details)[:4000]
        report.reason = reason
        await session.flush()
        return report, False
    report = Report(
        message_id=None,
        conversation_id=None,
        reporter_id=ctx.viewer.id,
        author_id=user_id,
        community_id=await _community_of(ctx, user_id),
        reason=reason,
        details=details,
        body_copy="",
        message_created_at=None,
        status="open",
        created_at=ctx.rt.clock.now(),
    )
    session.add(report)
    await session.flush()
    return report, True


def _same_subject(report: Report) -> Any:
    """The reports on what this one is about: its message, or, for a report on a person, the
    open ones on that person."""
    if report.message_id is not None:
        return Report.message_id == report.message_id
    return (Report.message_id.is_(None)) & (Report.author_id == report.author_id)


def open_report_message_ids() -> Any:
    """A subquery of the messages under an open report (the purge keeps them)."""
    return select(Report.message_id).where(Report.status == "open")


# --- the moderation queue's reads and writes ---


@dataclasses.dataclass(frozen=True, slots=True)
class QueueEntry:
    report: Report
    message_state: MessageState
    reports_on_message: int
    # the message's files, for moderators: kept while a report on it is open, even if removed
    attachments: list[AttachmentOut] = dataclasses.field(default_factory=list)


async def queue(
    session: AsyncSession,
    *,
    communities: Collection[int] | None,
    status: str = "open",
    before_id: int | None = None,
    limit: int = 50,
) -> list[QueueEntry]:
    """Reports newest first; `communities` None means all of them (admins)."""
    stmt = select(Report).order_by(Report.id.desc()).limit(limit)
    if status != "all":
        stmt = stmt.where(Report.status == status)
    if before_id is not None:
        stmt = stmt.where(Report.id < before_id)
    if communities is not None:
        stmt = stmt.where(Report.community_id.in_(communities or {-1}))
    rows = (await session.scalars(stmt)).all()
    return await _entries(session, rows)


async def find_report(session: AsyncSession, report_id: int) -> QueueEntry | None:
    row = await session.get(Report, report_id)
    return (await _entries(session, [row]))[0] if row is not None else None


async def _entries(session: AsyncSession, rows: Sequence[Report]) -> list[QueueEntry]:
    if not rows:
        return []
    message_ids = {r.message_id for r in rows if r.message_id is not None}
    live: dict[int, dt.datetime | None] = {
        mid: deleted_at
        for mid, deleted_at in await session.execute(
            select(Message.id, Message.deleted_at).where(Message.id.in_(message_ids))
        )
    }
    counts: dict[int, int] = {}
    for (mid,) in await session.execute(
        select(Report.message_id).where(Report.message_id.in_(message_ids))
    ):
        counts[mid] = counts.get(mid, 0) + 1

    def state(message_id: int | None) -> MessageState:
        if message_id is None:
            return "person"
        if message_id not in live:
            return "removed"
        return "deleted" if live[message_id] is not None else "visible"

    files: dict[int, list[Attachment]] = {}
    for a in await session.scalars(
        select(Attachment)
        .where(Attachment.message_id.in_(message_ids))
        .order_by(Attachment.position, Attachment.id)
    ):
        files.setdefault(a.message_id or 0, []).append(a)
    return [
        QueueEntry(
            r,
            state(r.message_id),
            counts.get(r.message_id, 1) if r.message_id is not None else 1,
            [_held_out(r, a) for a in files.get(r.message_id or 0, [])],
        )
        for r in rows
    ]


def _held(report: Report, attachment: Attachment) -> bool:
    """Whether a moderator can still look at a reported message's file."""
    return report.status == "open" or attachment.deleted_at is None


def _held_out(report: Report, a: Attachment) -> AttachmentOut:
    base = f"/api/v1/admin/reports/{report.id}/files/{a.id}"
    held = _held(report, a)
    return AttachmentOut(
        id=a.id,
        file_name=a.file_name,
        content_type=a.content_type,
        size=a.size,
        width=a.width,
        height=a.height,
        url=base if held else None,
        thumbnail_url=f"{base}/thumbnail" if held and a.thumbnail_key else None,
        removed=a.deleted_at is not None,
    )


async def held_attachment(session: AsyncSession, report: Report, attachment_id: int) -> Attachment:
    """A file of the reported message that moderators may look at; otherwise not found."""
    a = await session.get(Attachment, attachment_id)
    if a is None or a.message_id is None or a.message_id != report.message_id:
        raise NotFound("No such file.", code="attachment_not_found")
    if not _held(report, a):
        raise NotFound("No such file.", code="attachment_not_found")
    return a


async def close_reports(
    ctx: Ctx, report: Report, *, action: str, now: dt.datetime
) -> list[int] | None:
    """Resolve every open report on the report's message with `action`, in the unit of work,
    and tombstone the message for `delete_message`. Returns the reports closed, or None when
    this report was already resolved (by someone else a moment ago, or by an earlier try)."""
    session = ctx.uow.messaging
    closed = list(
        (
            await session.scalars(
                update(Report)
                .where(_same_subject(report), Report.status == "open")
                .values(
                    status="resolved", action=action, resolved_at=now, resolved_by=ctx.viewer.id
                )
                .returning(Report.id)
            )
        ).all()
    )
    if report.id not in closed:
        return None
    if action == "delete_message" and report.message_id is not None:
        message = await session.get(Message, report.message_id)
        if message is not None and message.deleted_at is None:
            await tombstone(ctx, message)
    return closed


async def closed_together(session: AsyncSession, report: Report) -> list[int]:
    """The reports resolved in the same stroke as this one (same message, same moment)."""
    return list(
        await session.scalars(
            select(Report.id).where(_same_subject(report), Report.resolved_at == report.resolved_at)
        )
    )
