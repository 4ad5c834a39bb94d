"""Catch-up after a dropped connection: every message the viewer may see after a given id.

The viewer's visible messages (`visibility.visible_messages`, like history) above an id, in id
order, a page at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select

from pigeon.core.db import Database
from pigeon.messaging.context import Ctx
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.messaging.schemas import MessageOut
from pigeon.messaging.service import blocked_senders, messages_out_in, since
from pigeon.messaging.visibility import visible_messages

PAGE = 500


async def messages_after(
    ctx: Ctx, after_id: int, *, limit: int = PAGE, hidden: set[int] | None = None
) -> list[MessageOut]:
    """The next `limit` messages the viewer may see with an id above `after_id`, oldest first."""
    if hidden is None:
        hidden = await blocked_senders(ctx)
    stmt = (
        visible_messages(ctx.viewer.id, since=since(ctx), hidden=hidden, upto=ctx.rt.stream.upto())
        .where(Message.id > after_id)
        .order_by(Message.id.asc())
        .limit(limit)
    )
    async with ctx.dbs.messaging.read() as session:
        rows = (await session.scalars(stmt)).all()
        return await messages_out_in(session, rows)


async def replay(ctx: Ctx, after_id: int, *, page: int | None = None) -> AsyncIterator[MessageOut]:
    """Every message the viewer may see after `after_id`, in id order, a page at a time."""
    page = page or PAGE
    hidden = await blocked_senders(ctx)
    cursor = after_id
    while True:
        batch = await messages_after(ctx, cursor, limit=page, hidden=hidden)
        for message in batch:
            yield message
        if len(batch) < page:
            return
        cursor = batch[-1].id


async def latest_message_id(db: Database) -> int:
    """The newest message id on the server: a safe point to resume from for a fresh client."""
    async with db.read() as session:
        return int(await session.scalar(select(func.max(Message.id))) or 0)


async def companions(db: Database, user_id: int) -> set[int]:
    """Everyone who shares a live conversation with the user (whom their presence concerns),
    leaving out message requests either of them has not accepted (`request_state`)."""
    mine = select(Participant.conversation_id).where(
        Participant.user_id == user_id, Participant.request_pending.is_(False)
    )
    async with db.read() as session:
        return set(
            await session.scalars(
                select(Participant.user_id)
                .join(Conversation, Conversation.id == Participant.conversation_id)
                .where(
                    Participant.conversation_id.in_(mine),
                    Conversation.deleted_at.is_(None),
                    Participant.user_id != user_id,
                    Participant.request_pending.is_(False),
                )
                .distinct()
            )
        )
