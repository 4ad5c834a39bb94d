"""Catch-up after a dropped connection: every message the viewer may see after a given id.

The same visibility as history (`list_messages`): the viewer's conversations that still exist,
inside the viewer's retention window, without the group messages of people the viewer blocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import and_, func, or_, select

from pigeon.core.db import Database
from pigeon.messaging.service import (
    C,
    Ctx,
    M,
    P,
    blocked_senders,
    message_dict,
    visible_since,
)

PAGE = 500


async def messages_after(
    ctx: Ctx, after_id: int, *, limit: int = PAGE, hidden: set[int] | None = None
) -> list[dict[str, Any]]:
    """The next `limit` messages the viewer may see with an id above `after_id`, oldest first."""
    if hidden is None:
        hidden = await blocked_senders(ctx)
    mine = and_(P.c.conversation_id == M.c.conversation_id, P.c.user_id == ctx.viewer.id)
    stmt = (
        select(M)
        .select_from(M.join(P, mine).join(C, C.c.id == M.c.conversation_id))
        .where(M.c.id > after_id, M.c.created_at >= visible_since(ctx), C.c.deleted_at.is_(None))
        .order_by(M.c.id.asc())
        .limit(limit)
    )
    if hidden:
        stmt = stmt.where(or_(C.c.kind != "group", M.c.sender_id.not_in(hidden)))
    async with ctx.dbs.messaging.read() as session:
        rows = (await session.execute(stmt)).all()
    return [message_dict(r) for r in rows]


async def replay(
    ctx: Ctx, after_id: int, *, page: int | None = None
) -> AsyncIterator[dict[str, Any]]:
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
        cursor = batch[-1]["id"]


async def latest_message_id(db: Database) -> int:
    """The newest message id on the server: a safe point to resume from for a fresh client."""
    async with db.read() as session:
        return int(await session.scalar(select(func.max(M.c.id))) or 0)


async def companions(db: Database, user_id: int) -> set[int]:
    """Everyone who shares a live conversation with the user (whom their presence concerns)."""
    mine = select(P.c.conversation_id).where(P.c.user_id == user_id)
    async with db.read() as session:
        return set(
            await session.scalars(
                select(P.c.user_id)
                .select_from(P.join(C, C.c.id == P.c.conversation_id))
                .where(
                    P.c.conversation_id.in_(mine), C.c.deleted_at.is_(None), P.c.user_id != user_id
                )
                .distinct()
            )
        )
