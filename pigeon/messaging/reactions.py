"""Reactions: one of each emoji per person on a message, under the message's own rules.

Whoever can see a message can react to it, as long as they could write to its conversation:
not across a block in a direct conversation, not outside the communities. In a group, those
who blocked the reactor never hear of it, as they never see the reactor's messages. Reacting
to a message request answers it, like a reply: it accepts the request.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update

from pigeon.core.db import rowcount
from pigeon.messaging import policy, requests
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import ReactionAdded, ReactionChange, ReactionRemoved
from pigeon.messaging.models import Message, Reaction
from pigeon.messaging.schemas import ReactionOut
from pigeon.messaging.service import (
    _insert,
    access_for_change,
    access_message,
    check_can_write,
    reactions_of,
    require_writable,
    unseen_by,
)


async def react(
    ctx: Ctx, message_id: int, emoji: str, *, add: bool
) -> tuple[list[ReactionOut], bool]:
    """Add (or remove) the viewer's `emoji` on a message; returns the message's reactions and
    whether anything changed (adding one already there, or removing one not there, is no
    change and tells no one)."""
    await ctx.rt.limiter.hit("react", ctx.viewer.id)
    await require_writable(ctx)
    emoji = policy.clean_emoji(emoji)
    row = await access_message(ctx, message_id)
    convo = await access_for_change(ctx, row.conversation_id)
    await check_can_write(ctx, convo)
    session = ctx.uow.messaging
    who = {"message_id": message_id, "user_id": ctx.viewer.id, "emoji": emoji}
    if add:
        done = await session.execute(
            _insert(ctx)(Reaction)
            .values(**who, created_at=ctx.rt.clock.now())
            .on_conflict_do_nothing()
        )
    else:
        done = await session.execute(
            delete(Reaction).where(*(getattr(Reaction, k) == v for k, v in who.items()))
        )
    changed = rowcount(done) > 0
    if changed:
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(reaction_count=Message.reaction_count + (1 if add else -1))
        )
    found = reactions_of(
        (
            await session.execute(
                select(Reaction.message_id, Reaction.emoji, Reaction.user_id)
                .where(Reaction.message_id == message_id)
                .order_by(Reaction.created_at, Reaction.user_id)
            )
        ).all()
    ).get(message_id, [])
    if changed and add and convo.members[ctx.viewer.id].pending:
        await requests.accept(ctx, row.conversation_id)  # answering a request accepts it
    if changed:
        data = ReactionChange(
            message_id=message_id,
            conversation_id=row.conversation_id,
            user_id=ctx.viewer.id,
            emoji=emoji,
            reactions=found,
        )
        blockers = await unseen_by(ctx, convo.kind, ctx.viewer.id)
        audience = [u for u in convo.members if u not in blockers]
        event = ReactionAdded(data=data) if add else ReactionRemoved(data=data)
        ctx.uow.emit(event, audience)
    return found, changed
