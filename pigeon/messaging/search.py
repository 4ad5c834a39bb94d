"""Searching one's own messages: what the viewer could scroll to, and nothing more.

The full-text index (`fulltext`) narrows the candidates to messages holding every word of the
query (the last one as a prefix); `visibility.visible_messages`, without deleted ones, still
decides which of them the viewer may see, exactly as history does.
"""

from __future__ import annotations

from pigeon.messaging import fulltext
from pigeon.messaging.context import Ctx
from pigeon.messaging.models import Message
from pigeon.messaging.schemas import MessageOut
from pigeon.messaging.service import (
    access_conversation,
    blocked_senders,
    messages_out_in,
    require_enabled,
    since,
)
from pigeon.messaging.visibility import visible_messages


async def search_messages(
    ctx: Ctx,
    q: str,
    *,
    conversation_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[MessageOut]:
    """Matching messages, newest first; a query without a word matches nothing."""
    await require_enabled(ctx)
    if conversation_id is not None:
        await access_conversation(ctx, conversation_id)
    terms = fulltext.words(q)
    if not terms:
        return []
    stmt = (
        visible_messages(
            ctx.viewer.id,
            since=since(ctx),
            hidden=await blocked_senders(ctx),
            include_deleted=False,
        )
        .where(fulltext.matching(ctx.dbs.messaging.dialect, terms))
        .order_by(Message.id.desc())
        .limit(limit)
    )
    if conversation_id is not None:
        stmt = stmt.where(Message.conversation_id == conversation_id)
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    async with ctx.dbs.messaging.read() as session:
        await fulltext.plan_for_these_words(session, ctx.dbs.messaging.dialect)
        rows = (await session.scalars(stmt)).all()
        return await messages_out_in(session, rows)
