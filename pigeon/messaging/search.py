"""Searching one's own messages: what the viewer could scroll to, and nothing more.

The same limits as history apply: conversations the viewer takes part in, messages inside the
viewer's retention window, not deleted, and in groups not from people the viewer blocked.
Matching is a case-insensitive substring match, fine for a community's volume of text.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, not_, select

from pigeon.core.text import contains
from pigeon.messaging import service as messaging
from pigeon.messaging.service import C, Ctx, M, P


async def search_messages(
    ctx: Ctx,
    q: str,
    *,
    conversation_id: int | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Matching messages, newest first."""
    await messaging.require_enabled(ctx)
    if conversation_id is not None:
        await messaging.access_conversation(ctx, conversation_id)
    if not q.strip():
        return []
    blocked = await messaging.blocked_senders(ctx)
    stmt = (
        select(M)
        .select_from(
            M.join(P, P.c.conversation_id == M.c.conversation_id).join(
                C, C.c.id == M.c.conversation_id
            )
        )
        .where(
            P.c.user_id == ctx.viewer.id,
            C.c.deleted_at.is_(None),
            M.c.deleted_at.is_(None),
            M.c.created_at >= messaging.visible_since(ctx),
            contains(M.c.body, q),
        )
        .order_by(M.c.id.desc())
        .limit(limit)
    )
    if blocked:
        stmt = stmt.where(not_(and_(C.c.kind == "group", M.c.sender_id.in_(blocked))))
    if conversation_id is not None:
        stmt = stmt.where(M.c.conversation_id == conversation_id)
    if before_id is not None:
        stmt = stmt.where(M.c.id < before_id)
    async with ctx.dbs.messaging.read() as session:
        rows = (await session.execute(stmt)).all()
    return [messaging.message_dict(r) for r in rows]
