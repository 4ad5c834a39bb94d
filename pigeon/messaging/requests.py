"""Answering a message request: accept it, or decline it (and perhaps block or report the
sender on the way). The rule itself, and what a pending request keeps quiet, is in
`request_state`.

Accepting moves the conversation to the inbox and from then on it is like any other: the
sender starts seeing the reads, typing goes both ways. Declining removes it for the person
like "Delete chat" (`organising.remove_for_me`) and tells the sender nothing; it stays a
request, so the sender's next message brings it back to the requests. A reply accepts too
(`send_tx`), and so does a reaction (`reactions`).
"""

from __future__ import annotations

from sqlalchemy import update

from pigeon.accounts import blocks
from pigeon.core.errors import Conflict
from pigeon.core.people import estranged
from pigeon.messaging import organising, reports
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import ReceiptRead
from pigeon.messaging.models import Participant
from pigeon.messaging.schemas import ReadState
from pigeon.messaging.service import Convo, access_for_change, require_enabled


async def access_request(ctx: Ctx, conversation_id: int) -> Convo:
    """The conversation, if it is a request to the viewer they have not accepted."""
    convo = await access_for_change(ctx, conversation_id)
    if not convo.members[ctx.viewer.id].pending:
        raise Conflict("This conversation is not a message request.", code="not_a_request")
    return convo


async def accept(ctx: Ctx, conversation_id: int) -> bool:
    """Accept a request; False when there was none (accepting twice changes nothing)."""
    await require_enabled(ctx)
    convo = await access_for_change(ctx, conversation_id)
    me = convo.members[ctx.viewer.id]
    if not me.pending:
        return False
    await ctx.uow.messaging.execute(
        update(Participant)
        .where(
            Participant.conversation_id == conversation_id,
            Participant.user_id == ctx.viewer.id,
        )
        .values(request_pending=False)
    )
    await organising.tell_myself(ctx, conversation_id, badge=True)
    if me.last_read_message_id:  # what they read while it was a request shows now
        state = ReadState(
            conversation_id=conversation_id,
            user_id=ctx.viewer.id,
            message_id=me.last_read_message_id,
            unread_count=me.unread_count,
        )
        hidden = estranged(await blocks.get_block_edges(ctx.rt, ctx.viewer.id), ctx.viewer.id)
        audience = [uid for uid in convo.other_ids(ctx.viewer.id) if uid not in hidden]
        ctx.uow.emit(ReceiptRead(data=state), audience)
    return True


async def decline(
    ctx: Ctx,
    conversation_id: int,
    *,
    block: bool = False,
    report_reason: str | None = None,
    report_details: str = "",
) -> None:
    """Decline a request: it leaves the viewer's lists, the sender is not told. With `block`,
    the sender is blocked too; with a `report_reason`, reported to the moderators."""
    await require_enabled(ctx)
    convo = await access_request(ctx, conversation_id)
    senders = convo.other_ids(ctx.viewer.id)
    for sender in senders:
        if report_reason is not None:
            await reports.report_person(ctx, sender, reason=report_reason, details=report_details)
        if block:
            await blocks.add_block(ctx.uow, ctx.viewer, sender)
    await organising.remove_for_me(ctx, conversation_id)
