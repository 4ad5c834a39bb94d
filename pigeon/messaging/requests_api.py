"""Message requests over the API: accepting and declining (the lists are
`GET /conversations?requests=true` and `GET /unread`'s `requests`)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from pigeon.core.types import RowIdPath
from pigeon.messaging import requests, views
from pigeon.messaging.deps import MessagingCtx as Ctx
from pigeon.messaging.schemas import ConversationOut, DeclineIn

router = APIRouter(tags=["messaging"])


@router.post("/conversations/{conversation_id}/accept", response_model=ConversationOut)
async def accept(conversation_id: RowIdPath, ctx: Ctx) -> ConversationOut:
    """Accept a message request: it moves to your inbox, and from then on the sender sees
    your reads and typing goes both ways. Replying accepts too; accepting twice is harmless."""
    await requests.accept(ctx, conversation_id)
    return await views.get_conversation(ctx, conversation_id)


@router.post("/conversations/{conversation_id}/decline", status_code=204)
async def decline(conversation_id: RowIdPath, ctx: Ctx, body: DeclineIn | None = None) -> Response:
    """Decline a message request (409 `not_a_request` for anything else): it leaves your
    lists and the sender is not told; their next message brings it back as a request. With
    `block`, the sender is blocked too; with `report`, reported to the moderators."""
    choice = body or DeclineIn()
    await requests.decline(
        ctx,
        conversation_id,
        block=choice.block,
        report_reason=choice.report.reason if choice.report else None,
        report_details=choice.report.details if choice.report else "",
    )
    return Response(status_code=204)
