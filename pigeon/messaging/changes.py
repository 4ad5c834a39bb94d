"""Changes to what was sent: read marks, edits, deletions (tombstones)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.core.clock import clock
from pigeon.core.db import Databases
from pigeon.core.errors import NotAllowed, NotFound
from pigeon.core.events import emit
from pigeon.messaging import policy
from pigeon.messaging.service import (
    Ctx,
    M,
    P,
    access_conversation,
    hidden_senders,
    load_convo,
    message_dict,
    require_enabled,
    unread_totals,
    unseen_by,
    visible_since,
)

# --- read state ---


async def mark_read(ctx: Ctx, conversation_id: int, message_id: int) -> dict[str, Any]:
    await require_enabled(ctx)
    convo = await access_conversation(ctx, conversation_id)
    db = ctx.dbs.messaging
    async with db.write() as session:
        found = await session.scalar(
            select(M.c.id).where(M.c.id == message_id, M.c.conversation_id == conversation_id)
        )
        if found is None:
            raise NotFound("No such message in this conversation.", code="message_not_found")
        me = convo.members[ctx.viewer.id]
        upto = max(me.last_read_message_id, message_id)
        hidden = await hidden_senders(ctx, convo)
        remaining_q = (
            select(func.count())
            .select_from(M)
            .where(
                M.c.conversation_id == conversation_id,
                M.c.id > upto,
                M.c.sender_id != ctx.viewer.id,
                M.c.deleted_at.is_(None),
                M.c.created_at >= visible_since(ctx),
            )
        )
        if hidden:
            remaining_q = remaining_q.where(M.c.sender_id.not_in(hidden))
        remaining = int(await session.scalar(remaining_q) or 0)
        await session.execute(
            update(P)
            .where(P.c.conversation_id == conversation_id, P.c.user_id == ctx.viewer.id)
            .values(last_read_message_id=upto, unread_count=remaining)
        )
        totals = await unread_totals(session, [ctx.viewer.id])
        state = {
            "conversation_id": conversation_id,
            "user_id": ctx.viewer.id,
            "message_id": upto,
            "unread_count": remaining,
        }
        if upto > me.last_read_message_id:
            emit(session, "receipt.read", state, user_ids=convo.other_ids(ctx.viewer.id))
        emit(
            session,
            "unread",
            {
                "total": totals.get(ctx.viewer.id, 0),
                "conversation_id": conversation_id,
                "count": remaining,
            },
            user_ids=[ctx.viewer.id],
        )
    return state


async def mark_read_message(ctx: Ctx, message_id: int) -> dict[str, Any]:
    """The original plan's `PUT /messages/{id}/read`."""
    conv_id = await _conversation_of(ctx, message_id)
    return await mark_read(ctx, conv_id, message_id)


async def _conversation_of(ctx: Ctx, message_id: int) -> int:
    async with ctx.dbs.messaging.read() as session:
        row = (
            await session.execute(
                select(M.c.conversation_id)
                .select_from(M.join(P, P.c.conversation_id == M.c.conversation_id))
                .where(M.c.id == message_id, P.c.user_id == ctx.viewer.id)
            )
        ).first()
    if row is None:
        raise NotFound("No such message.", code="message_not_found")
    return int(row.conversation_id)


# --- edit and delete ---


async def _own_message(session: AsyncSession, ctx: Ctx, message_id: int) -> Any:
    """The viewer's own, undeleted message. Someone else's is "not yours" to those who can see
    it, and simply not found to everyone else."""
    row = (await session.execute(select(M).where(M.c.id == message_id))).first()
    if row is not None and row.sender_id != ctx.viewer.id:
        convo = await load_convo(session, row.conversation_id)
        if convo is not None and ctx.viewer.id in convo.members:
            raise NotAllowed("You can only change your own messages.", code="not_message_author")
    if row is None or row.sender_id != ctx.viewer.id:
        raise NotFound("No such message.", code="message_not_found")
    if row.deleted_at is not None:
        raise NotFound("That message was deleted.", code="message_deleted")
    return row


async def edit_message(ctx: Ctx, message_id: int, body: str) -> dict[str, Any]:
    await require_enabled(ctx)
    body = policy.clean_body(body, ctx.settings.max_body_chars)
    async with ctx.dbs.messaging.write() as session:
        row = await _own_message(session, ctx, message_id)
        convo = await load_convo(session, row.conversation_id)
        if convo is None or ctx.viewer.id not in convo.members:
            raise NotFound("No such message.", code="message_not_found")
        blockers = await unseen_by(ctx.dbs, convo.kind, ctx.viewer.id)
        now = clock.now()
        updated = (
            await session.execute(
                update(M)
                .where(M.c.id == message_id)
                .values(body=body, edited_at=now)
                .returning(*M.c)
            )
        ).one()
        message = message_dict(updated)
        audience = [u for u in convo.members if u not in blockers]
        emit(session, "message.updated", message, user_ids=audience, id=message_id)
    return message


async def delete_message(ctx: Ctx, message_id: int) -> dict[str, Any]:
    await require_enabled(ctx)
    async with ctx.dbs.messaging.write() as session:
        row = await _own_message(session, ctx, message_id)
        return await tombstone(session, row, dbs=ctx.dbs)


async def tombstone(session: AsyncSession, row: Any, *, dbs: Databases) -> dict[str, Any]:
    """Remove a message's text, keep its place; unread counts that included it drop by one.

    In a group, those who blocked the sender never counted it (nor saw it), so theirs stay.
    """
    convo = await load_convo(session, row.conversation_id)
    members = set(convo.members) if convo else set()
    uncounted = await unseen_by(dbs, convo.kind, row.sender_id) if convo else set()
    now = clock.now()
    updated = (
        await session.execute(
            update(M).where(M.c.id == row.id).values(body="", deleted_at=now).returning(*M.c)
        )
    ).one()
    counted = [
        P.c.conversation_id == row.conversation_id,
        P.c.user_id != row.sender_id,
        P.c.last_read_message_id < row.id,
        P.c.unread_count > 0,
    ]
    if uncounted:
        counted.append(P.c.user_id.not_in(uncounted))
    await session.execute(update(P).where(*counted).values(unread_count=P.c.unread_count - 1))
    message = message_dict(updated)
    emit(
        session,
        "message.deleted",
        {"id": row.id, "conversation_id": row.conversation_id, "deleted": True},
        user_ids=members - uncounted,
        id=row.id,
    )
    return message
