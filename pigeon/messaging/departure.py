"""A deleted account in the messaging database.

The person leaves every group they were in (`groups.take_out`: an owner's role passes to an
heir, the members are told). Their direct conversations stay with the other person, who sees
them as `accounts.DELETED_NAME`. Their messages are either kept, shown as from that name, or
removed the way an author deletes one (`changes.tombstone`, message by message, so unread counts
and live clients follow as they do for one). Reports about them or their messages are not
touched: they hold their own copy of what was reported, for the moderators.

It runs whether messaging is on or off (it is part of deleting the account, not messaging).
"""

from __future__ import annotations

from typing import Literal

from sqlalchemy import select, update

from pigeon.accounts import service as accounts
from pigeon.messaging.changes import tombstone
from pigeon.messaging.context import Ctx
from pigeon.messaging.groups import take_out
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.messaging.service import load_convo

MessagesChoice = Literal["keep", "remove"]
_CHUNK = 200


async def depart(ctx: Ctx, user_id: int, *, messages: MessagesChoice) -> None:
    """Everything the messaging database does when `user_id`'s account is deleted, in the
    unit of work; `ctx.viewer` is whoever deletes it (themselves or an admin)."""
    session = ctx.uow.messaging
    if messages == "remove":
        await _remove_messages(ctx, user_id)
    groups = (
        await session.scalars(
            select(Participant.conversation_id)
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .where(
                Participant.user_id == user_id,
                Conversation.kind == "group",
                Conversation.deleted_at.is_(None),
            )
            .order_by(Participant.conversation_id)
        )
    ).all()
    for conversation_id in groups:
        convo = await load_convo(session, conversation_id)
        if convo is not None and user_id in convo.members:
            await take_out(ctx, convo, user_id)
    await session.execute(
        update(Participant)
        .where(Participant.user_id == user_id)
        .values(display_name=accounts.DELETED_NAME)
    )
    await session.flush()


async def _remove_messages(ctx: Ctx, user_id: int) -> None:
    """Each of their messages not yet deleted, deleted as its author would, a chunk at a time."""
    session = ctx.uow.messaging
    after = 0
    while True:
        rows = (
            await session.scalars(
                select(Message)
                .where(
                    Message.sender_id == user_id, Message.deleted_at.is_(None), Message.id > after
                )
                .order_by(Message.id)
                .limit(_CHUNK)
            )
        ).all()
        for row in rows:
            await tombstone(ctx, row)
        if len(rows) < _CHUNK:
            return
        after = rows[-1].id
