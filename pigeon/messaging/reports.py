"""Reports: anyone who can see a message may report it to the moderators.

A report keeps a copy of the message as it was reported (`body_copy`), so what moderators judge
survives the author deleting or editing it and the retention job removing it; the purge skips
messages under an open report. One person reporting the same message again updates their report
instead of adding another (unique message_id, reporter_id).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import service as accounts
from pigeon.core.clock import clock
from pigeon.core.errors import NotAllowed, NotFound
from pigeon.messaging import service as messaging
from pigeon.messaging.models import Report
from pigeon.messaging.service import Ctx, M

R = Report.__table__

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


def report_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "message_id": row.message_id,
        "conversation_id": row.conversation_id,
        "reporter_id": row.reporter_id,
        "author_id": row.author_id,
        "community_id": row.community_id,
        "reason": row.reason,
        "details": row.details,
        "status": row.status,
        "action": row.action,
        "created_at": row.created_at,
        "resolved_at": row.resolved_at,
    }


async def _visible_message(ctx: Ctx, message_id: int) -> Any:
    """The message, if the viewer can see it now; otherwise not found (no hint either way)."""
    async with ctx.dbs.messaging.read() as session:
        row = (await session.execute(select(M).where(M.c.id == message_id))).first()
        convo = await messaging.load_convo(session, row.conversation_id) if row else None
    missing = NotFound("No such message.", code="message_not_found")
    if row is None or row.deleted_at is not None:
        raise missing
    if convo is None or ctx.viewer.id not in convo.members:
        raise missing
    if row.created_at < messaging.visible_since(ctx):
        raise missing
    if row.sender_id in await messaging.hidden_senders(ctx, convo):
        raise missing
    return row


async def _community_of(ctx: Ctx, author_id: int) -> int | None:
    """The community whose managers see the report: one reporter and author share."""
    async with ctx.dbs.app.read() as session:
        author = await accounts.principal(session, author_id)
    if author is None:
        return min(ctx.viewer.community_ids, default=None)
    shared = ctx.viewer.community_ids & author.community_ids
    return min(shared or author.community_ids or ctx.viewer.community_ids, default=None)


async def report_message(
    ctx: Ctx, message_id: int, *, reason: str, details: str = ""
) -> tuple[dict[str, Any], bool]:
    """File (or update) the viewer's report on a message; returns (report, created)."""
    await messaging.require_enabled(ctx)
    row = await _visible_message(ctx, message_id)
    if row.sender_id == ctx.viewer.id:
        raise NotAllowed("You cannot report your own message.", code="cannot_report_own_message")
    community_id = await _community_of(ctx, row.sender_id)
    now = clock.now()
    db = ctx.dbs.messaging
    async with db.write() as session:
        created_id = await session.scalar(
            messaging._insert(db, R)
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
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["message_id", "reporter_id"])
            .returning(R.c.id)
        )
        if created_id is None:  # reported before by this person: merge into that report
            await _merge(session, message_id, ctx.viewer.id, reason=reason, details=details)
        report = (
            await session.execute(
                select(R).where(R.c.message_id == message_id, R.c.reporter_id == ctx.viewer.id)
            )
        ).one()
    return report_dict(report), created_id is not None


async def _merge(
    session: AsyncSession, message_id: int, reporter_id: int, *, reason: str, details: str
) -> None:
    """An open report takes the newer reason and gains the new details; a resolved one stays."""
    existing = (
        await session.execute(
            select(R.c.id, R.c.details, R.c.status).where(
                R.c.message_id == message_id, R.c.reporter_id == reporter_id
            )
        )
    ).one()
    if existing.status != "open":
        return
    merged = existing.details
    if details and details not in merged:
        merged = f"{merged}\n{details}" if merged else details
    await session.execute(
        update(R).where(R.c.id == existing.id).values(reason=reason, details=merged[:4000])
    )


def open_report_message_ids() -> Any:
    """A subquery of the messages under an open report (the purge keeps them)."""
    return select(R.c.message_id).where(R.c.status == "open")
