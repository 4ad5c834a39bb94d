"""Changes to what was sent: read marks, edits, deletions (tombstones)."""

from __future__ import annotations

from sqlalchemy import func, select, update

from pigeon.accounts import blocks, directory
from pigeon.core.errors import NotAllowed, NotFound
from pigeon.core.people import withheld
from pigeon.messaging import policy, request_state
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import (
    Deleted,
    MessageDeleted,
    MessageUpdated,
    ReceiptRead,
    Unread,
    UnreadData,
)
from pigeon.messaging.models import Message, Participant
from pigeon.messaging.schemas import MessageOut, ReadState
from pigeon.messaging.service import (
    access_conversation,
    access_for_change,
    check_can_write,
    hidden_senders,
    load_convo,
    message_out,
    messages_out_in,
    require_enabled,
    require_writable,
    since,
    unread_totals,
    unseen_by,
)
from pigeon.messaging.visibility import visible_messages

# --- read state ---


async def mark_read(ctx: Ctx, conversation_id: int, message_id: int) -> ReadState:
    """Mark read up to a message. Only forward progress is written: a mark at or below the
    read position changes nothing, takes no write lock and tells no one."""
    await require_enabled(ctx)
    seen = (await access_conversation(ctx, conversation_id)).members[ctx.viewer.id]
    if message_id <= seen.last_read_message_id and not seen.marked_unread:
        await _check_in(ctx, conversation_id, message_id)
        return ReadState(
            conversation_id=conversation_id,
            user_id=ctx.viewer.id,
            message_id=seen.last_read_message_id,
            unread_count=seen.unread_count,
        )
    convo = await access_for_change(ctx, conversation_id)
    session = ctx.uow.messaging
    await _check_in(ctx, conversation_id, message_id)
    me = convo.members[ctx.viewer.id]
    upto = max(me.last_read_message_id, message_id)
    unread_after = (
        visible_messages(
            ctx.viewer.id,
            since=since(ctx),
            hidden=await hidden_senders(ctx, convo),
            conversation=convo.key,
            cleared_to_id=me.cleared_to_id,
            include_deleted=False,
        )
        .where(Message.id > upto, Message.sender_id != ctx.viewer.id)
        .with_only_columns(func.count())
    )
    remaining = int(await session.scalar(unread_after) or 0)
    await session.execute(
        update(Participant)
        .where(
            Participant.conversation_id == conversation_id,
            Participant.user_id == ctx.viewer.id,
        )
        .values(last_read_message_id=upto, unread_count=remaining, marked_unread=False)
    )
    totals = await unread_totals(session, [ctx.viewer.id])
    state = ReadState(
        conversation_id=conversation_id,
        user_id=ctx.viewer.id,
        message_id=upto,
        unread_count=remaining,
    )
    # to whom `withheld` allows (like presence), and not while it is a request to me
    if upto > me.last_read_message_id and not request_state.quiet(ctx.viewer.id, convo.members):
        others = await directory.principals(ctx.rt, convo.other_ids(ctx.viewer.id))
        hidden = withheld(
            await blocks.get_block_edges(ctx.rt, ctx.viewer.id),
            ctx.viewer.id,
            ctx.viewer.sends_receipts,
            {uid: p.sends_receipts for uid, p in others.items()},
        )
        audience = [uid for uid in others if uid not in hidden]
        if audience:
            ctx.uow.emit(ReceiptRead(data=state), audience)
    data = UnreadData(
        total=totals.get(ctx.viewer.id, 0), conversation_id=conversation_id, count=remaining
    )
    ctx.uow.emit(Unread(data=data), [ctx.viewer.id])
    return state


async def _check_in(ctx: Ctx, conversation_id: int, message_id: int) -> None:
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        found = await session.scalar(
            select(Message.id).where(
                Message.id == message_id, Message.conversation_id == conversation_id
            )
        )
    if found is None:
        raise NotFound("No such message in this conversation.", code="message_not_found")


async def mark_read_message(ctx: Ctx, message_id: int) -> ReadState:
    """The original plan's `PUT /messages/{id}/read`."""
    conv_id = await _conversation_of(ctx, message_id)
    return await mark_read(ctx, conv_id, message_id)


async def _conversation_of(ctx: Ctx, message_id: int) -> int:
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        row = (
            await session.execute(
                select(Message.conversation_id)
                .join(Participant, Participant.conversation_id == Message.conversation_id)
                .where(Message.id == message_id, Participant.user_id == ctx.viewer.id)
            )
        ).first()
    if row is None:
        raise NotFound("No such message.", code="message_not_found")
    return int(row.conversation_id)


# --- edit and delete ---


async def _own_message(ctx: Ctx, message_id: int) -> Message:
    """The viewer's own, undeleted message, in the unit of work. Someone else's is "not yours"
    to those who can see it, and simply not found to everyone else."""
    session = ctx.uow.messaging
    row = await session.get(Message, message_id)
    if row is not None and row.sender_id != ctx.viewer.id:
        convo = await load_convo(session, row.conversation_id)
        if convo is not None and ctx.viewer.id in convo.members:
            raise NotAllowed("You can only change your own messages.", code="not_message_author")
    if row is None or row.sender_id != ctx.viewer.id:
        raise NotFound("No such message.", code="message_not_found")
    if row.deleted_at is not None:
        raise NotFound("That message was deleted.", code="message_deleted")
    return row


async def edit_message(ctx: Ctx, message_id: int, body: str) -> MessageOut:
    await ctx.rt.limiter.hit("edit", ctx.viewer.id)
    await require_writable(ctx)
    body = policy.clean_body(body, ctx.settings.max_body_chars)
    row = await _own_message(ctx, message_id)
    convo = await access_for_change(ctx, row.conversation_id)
    await check_can_write(ctx, convo)  # an edit reaches people like a send: the same rules
    blockers = await unseen_by(ctx, convo.kind, ctx.viewer.id)
    row.body, row.edited_at = body, ctx.rt.clock.now()
    await ctx.uow.messaging.flush()
    [message] = await messages_out_in(ctx.uow.messaging, [row])
    audience = [u for u in convo.members if u not in blockers]
    ctx.uow.emit(MessageUpdated(data=message, id=message_id), audience)
    return message


async def delete_message(ctx: Ctx, message_id: int) -> MessageOut:
    await require_writable(ctx)
    row = await _own_message(ctx, message_id)
    return await tombstone(ctx, row)


async def tombstone(ctx: Ctx, row: Message) -> MessageOut:
    """Remove a message's text, keep its place; unread counts that included it drop by one.

    In a group, those who blocked the sender never counted it (nor saw it), so theirs stay.
    Used by authors (`delete_message`) and by moderators, in their unit of work.
    """
    session = ctx.uow.messaging
    convo = await load_convo(session, row.conversation_id)
    members = set(convo.members) if convo else set()
    uncounted = await unseen_by(ctx, convo.kind, row.sender_id) if convo else set()
    row.body, row.deleted_at = "", ctx.rt.clock.now()
    counted = [
        Participant.conversation_id == row.conversation_id,
        Participant.user_id != row.sender_id,
        Participant.last_read_message_id < row.id,
        Participant.unread_count > 0,
    ]
    if uncounted:
        counted.append(Participant.user_id.not_in(uncounted))
    await session.execute(
        update(Participant).where(*counted).values(unread_count=Participant.unread_count - 1)
    )
    await session.flush()
    data = Deleted(id=row.id, conversation_id=row.conversation_id)
    ctx.uow.emit(MessageDeleted(data=data, id=row.id), members - uncounted)
    return message_out(row)
