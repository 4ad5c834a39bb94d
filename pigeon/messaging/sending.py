"""Sending a message, from the checks that need no database to the events after commit.

1. Rate limit, the switch, the sender's standing, the body (rule 7: text, or files), the
   sender's blocks: from memory.
2. The write (`send_tx.apply_send`): membership, idempotency, the community boundary and the
   blocks (rules 3 and 4, the other members read from the people cache), the reply target,
   the attachments (rule 8), the row, the unread counts; on SQLite in the group-committing
   writer thread, elsewhere in the request's unit of work.
3. One event, queued on the unit of work and published after its commit: `message.new` to the
   sender and the recipients, carrying each recipient's new unread total.
"""

from __future__ import annotations

from collections.abc import Sequence

from pigeon.accounts import blocks, directory
from pigeon.core import metrics
from pigeon.core.errors import BadRequest
from pigeon.media.receive import Received
from pigeon.messaging import attachments, policy
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import (
    ConversationChange,
    ConversationUpdated,
    MessageNew,
    RequestMessageNew,
)
from pigeon.messaging.schemas import MAX_ATTACHMENTS, MessageCreate, MessageOut
from pigeon.messaging.send_tx import PeopleNeeded, SendOp
from pigeon.messaging.service import attachment_out, message_out, require_writable, start_direct


async def send_message(
    ctx: Ctx,
    conversation_id: int,
    *,
    body: str,
    client_msg_id: str | None = None,
    reply_to_id: int | None = None,
    attachment_ids: Sequence[int] = (),
) -> tuple[MessageOut, bool]:
    """Send; returns (message, created). A repeated client_msg_id returns the original."""
    await ctx.rt.limiter.check_send(ctx.viewer.id)
    await require_writable(ctx)
    body = policy.clean_message(body, ctx.settings.max_body_chars, attachments=len(attachment_ids))
    op = SendOp(
        conversation_id=conversation_id,
        sender=ctx.viewer,
        body=body,
        client_msg_id=client_msg_id,
        reply_to_id=reply_to_id,
        now=ctx.rt.clock.now(),
        edges=await blocks.get_block_edges(ctx.rt, ctx.viewer.id),
        known=ctx.rt.people.principals.get,
        attachment_ids=tuple(attachment_ids),
        read_people=lambda user_ids: directory.principals(ctx.rt, user_ids),
    )
    try:
        result = await ctx.sends.run(ctx.uow, op)
    except PeopleNeeded as need:  # rare (SQLite): someone not in the people cache right now
        await op.learn(need.user_ids)
        result = await ctx.sends.run(ctx.uow, op)
    message = message_out(result.row, map(attachment_out, result.attachments))
    if result.created:
        metrics.messages_sent.inc()
        requested = result.requested.intersection(result.recipients)
        if not requested:
            ctx.uow.emit(
                MessageNew(data=message, id=message.id),
                [ctx.viewer.id, *result.recipients],
                unread=result.totals,
            )
        else:  # rare: a message request, flagged for whom it is one, off their badge
            inbox = [uid for uid in result.recipients if uid not in requested]
            totals = {uid: n for uid, n in result.totals.items() if uid not in requested}
            ctx.uow.emit(
                MessageNew(data=message, id=message.id), [ctx.viewer.id, *inbox], unread=totals
            )
            ctx.uow.emit(RequestMessageNew.of(message), requested)
        if result.accepted:  # a reply accepts: the sender's other devices move it to the inbox
            change = ConversationChange(conversation_id=conversation_id, change="personal")
            ctx.uow.emit(ConversationUpdated(data=change), [ctx.viewer.id])
    return message, result.created


async def send_created(
    ctx: Ctx, conversation_id: int, create: MessageCreate
) -> tuple[MessageOut, bool]:
    """`send_message` of a validated request body, in a unit of work the caller owns: what the
    send route and its lean path both run."""
    return await send_message(
        ctx,
        conversation_id,
        body=create.body,
        client_msg_id=create.client_msg_id,
        reply_to_id=create.reply_to_id,
        attachment_ids=create.attachment_ids,
    )


async def send_with_files(
    ctx: Ctx,
    conversation_id: int,
    *,
    body: str,
    client_msg_id: str | None,
    files: Sequence[Received] = (),
    attachment_ids: Sequence[int] = (),
    reply_to_id: int | None = None,
) -> MessageOut:
    """The reply form's send: its files uploaded, then the message naming them after those
    uploaded beforehand (by the page's script), all in the caller's unit of work, so that a
    refusal of any of it, rolled back, leaves neither rows nor files."""
    if len(files) + len(attachment_ids) > MAX_ATTACHMENTS:
        raise BadRequest(
            f"At most {MAX_ATTACHMENTS} files at a time.",
            code="too_many_files",
            fields={"files": f"at most {MAX_ATTACHMENTS}"},
        )
    stored: list[attachments.Stored] = []
    try:  # every file processed and stored before anything is written: no lock is held meanwhile
        for received in files:
            await attachments.check_can_upload(ctx)
            stored.append(await attachments.store(ctx, received, conversation_id=conversation_id))
    except BaseException:
        for done in stored:
            await attachments.discard(ctx, done)
        raise
    uploaded: list[int] = []
    for n, done in enumerate(stored):
        try:
            uploaded.append((await attachments.record(ctx, done)).id)
        except BaseException:  # what was recorded goes with the rollback; the rest goes now
            for rest in stored[n + 1 :]:
                await attachments.discard(ctx, rest)
            raise
    message, created = await send_message(
        ctx,
        conversation_id,
        body=body,
        client_msg_id=client_msg_id,
        reply_to_id=reply_to_id,
        attachment_ids=[*attachment_ids, *uploaded],
    )
    if not created:  # the same form sent twice: the first one's files stand, these go
        for attachment_id in uploaded:
            await attachments.remove_attachment(ctx, attachment_id)
    return message


async def send_direct(
    ctx: Ctx, recipient_id: int, *, body: str, client_msg_id: str | None
) -> tuple[MessageOut, bool]:
    """The original plan's `/messages/send`: start or reuse the direct conversation, then send."""
    await require_writable(ctx)
    body = policy.clean_body(body, ctx.settings.max_body_chars)
    conv_id, _ = await start_direct(ctx, recipient_id)
    return await send_message(ctx, conv_id, body=body, client_msg_id=client_msg_id)
