"""How each person keeps their conversations, for themselves alone: mute (no badge), pin (at
most three, on top), archive (out of the list until something new happens), mark unread, and
remove a conversation for oneself (its messages so far are gone for them; it comes back with
the next one). Nobody else sees any of it; the person's other devices hear of it live.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from pigeon.core.errors import Conflict
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import (
    ConversationChange,
    ConversationUpdated,
    Unread,
    UnreadData,
)
from pigeon.messaging.models import Conversation, Participant
from pigeon.messaging.service import access_for_change, require_enabled, unread_totals

MAX_PINNED = 3


async def organise(
    ctx: Ctx,
    conversation_id: int,
    *,
    muted: bool | None = None,
    pinned: bool | None = None,
    archived: bool | None = None,
    unread: bool | None = None,
) -> None:
    """Change how the viewer keeps a conversation; fields left None stay as they are."""
    await ctx.rt.limiter.hit("organise", ctx.viewer.id)
    await require_enabled(ctx)
    await access_for_change(ctx, conversation_id)
    now = ctx.rt.clock.now()
    values: dict[str, Any] = {}
    if muted is not None:
        values["muted"] = muted
    if pinned is not None:
        if pinned:
            await _check_room_to_pin(ctx, conversation_id)
        values["pinned_at"] = now if pinned else None
    if archived is not None:
        values["archived_at"] = now if archived else None
        if archived:
            values["pinned_at"] = None  # an archived conversation is out of the list
    if unread is not None:
        values["marked_unread"] = unread
        if not unread:  # "mark as read": nothing left to read
            values["unread_count"] = 0
            values["last_read_message_id"] = await _last_message_id(ctx, conversation_id)
    if not values:
        return
    await _set(ctx, conversation_id, values)
    await tell_myself(ctx, conversation_id, badge="muted" in values or "unread_count" in values)


async def remove_for_me(ctx: Ctx, conversation_id: int) -> None:
    """The conversation leaves the viewer's list, and its messages so far their history; the
    next message brings it back, from there on. The others keep everything."""
    await ctx.rt.limiter.hit("organise", ctx.viewer.id)
    await require_enabled(ctx)
    await access_for_change(ctx, conversation_id)
    last = await _last_message_id(ctx, conversation_id)
    await _set(
        ctx,
        conversation_id,
        {
            "removed_at": ctx.rt.clock.now(),
            "cleared_to_id": last,
            "last_read_message_id": last,
            "unread_count": 0,
            "marked_unread": False,
            "pinned_at": None,
            "archived_at": None,
        },
    )
    await tell_myself(ctx, conversation_id, badge=True)


async def _check_room_to_pin(ctx: Ctx, conversation_id: int) -> None:
    others = await ctx.uow.messaging.scalar(
        select(func.count())
        .select_from(Participant)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(
            Participant.user_id == ctx.viewer.id,
            Participant.pinned_at.is_not(None),
            Participant.conversation_id != conversation_id,
            Conversation.deleted_at.is_(None),
        )
    )
    if (others or 0) >= MAX_PINNED:
        raise Conflict(
            f"You can pin at most {MAX_PINNED} conversations; unpin one first.",
            code="too_many_pinned",
        )


async def _last_message_id(ctx: Ctx, conversation_id: int) -> int:
    found = await ctx.uow.messaging.scalar(
        select(Conversation.last_message_id).where(Conversation.id == conversation_id)
    )
    return int(found or 0)


async def _set(ctx: Ctx, conversation_id: int, values: dict[str, Any]) -> None:
    await ctx.uow.messaging.execute(
        update(Participant)
        .where(
            Participant.conversation_id == conversation_id,
            Participant.user_id == ctx.viewer.id,
        )
        .values(**values)
    )


async def tell_myself(ctx: Ctx, conversation_id: int, *, badge: bool) -> None:
    """The viewer's other devices: the list changed; and the badge, when it moved."""
    change = ConversationChange(conversation_id=conversation_id, change="personal")
    ctx.uow.emit(ConversationUpdated(data=change), [ctx.viewer.id])
    if badge:
        session = ctx.uow.messaging
        total = (await unread_totals(session, [ctx.viewer.id])).get(ctx.viewer.id, 0)
        count = await session.scalar(
            select(Participant.unread_count).where(
                Participant.conversation_id == conversation_id,
                Participant.user_id == ctx.viewer.id,
            )
        )
        data = UnreadData(total=total, conversation_id=conversation_id, count=int(count or 0))
        ctx.uow.emit(Unread(data=data), [ctx.viewer.id])
