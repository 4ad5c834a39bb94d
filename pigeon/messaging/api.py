"""Conversations and messages, plus the original plan's aliases over the same services."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from pigeon.accounts.schemas import UserIdsIn
from pigeon.core.deps import CurrentUser
from pigeon.core.errors import Invalid
from pigeon.core.types import INT64_MAX, RowIdPath, UserIdPath
from pigeon.messaging import changes, groups, sending
from pigeon.messaging import service as messaging
from pigeon.messaging.schemas import (
    ConversationCreate,
    ConversationOut,
    ConversationUpdate,
    DirectSend,
    GroupCreate,
    MessageCreate,
    MessageEdit,
    MessageOut,
    ReadIn,
    ReadState,
    UnreadOut,
)

router = APIRouter(tags=["messaging"])


async def messaging_ctx(request: Request, user: CurrentUser) -> messaging.Ctx:
    state = request.app.state
    return messaging.Ctx(dbs=state.dbs, settings=state.settings, viewer=user)


Ctx = Annotated[messaging.Ctx, Depends(messaging_ctx)]
Limit = Annotated[int, Query(ge=1, le=200)]
MsgId = Annotated[int | None, Query(ge=1, le=INT64_MAX)]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def created(response: Response, was_created: bool) -> None:
    response.status_code = 201 if was_created else 200


@router.post("/conversations", status_code=201, response_model=ConversationOut)
async def start(body: ConversationCreate, ctx: Ctx, response: Response) -> dict[str, Any]:
    if body.kind == "direct":
        others = set(body.participant_ids) - {ctx.viewer.id}
        if len(others) != 1:
            raise Invalid(
                "A direct conversation has exactly one other participant.",
                fields={"participant_ids": "name exactly one other person"},
            )
        conv_id, was_created = await messaging.start_direct(ctx, others.pop())
        created(response, was_created)
    else:
        conv_id = await messaging.start_group(ctx, body.participant_ids, body.title)
    return await messaging.get_conversation(ctx, conv_id)


@router.get("/conversations", response_model=list[ConversationOut])
async def conversations(
    ctx: Ctx,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    page = await messaging.list_conversations(ctx, limit=limit, before=_aware(before))
    if len(page) == limit:
        response.headers["X-Next-Before"] = page[-1]["updated_at"].isoformat()
    return page


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def conversation(conversation_id: RowIdPath, ctx: Ctx) -> dict[str, Any]:
    return await messaging.get_conversation(ctx, conversation_id)


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut)
async def rename(conversation_id: RowIdPath, body: ConversationUpdate, ctx: Ctx) -> dict[str, Any]:
    await groups.rename(ctx, conversation_id, body.title)
    return await messaging.get_conversation(ctx, conversation_id)


@router.get("/conversations/{conversation_id}/messages", response_model=list[MessageOut])
async def history(
    conversation_id: RowIdPath,
    ctx: Ctx,
    before_id: MsgId = None,
    after_id: MsgId = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    return await messaging.list_messages(
        ctx, conversation_id, before_id=before_id, after_id=after_id, limit=limit
    )


@router.post(
    "/conversations/{conversation_id}/messages", status_code=201, response_model=MessageOut
)
async def send(
    conversation_id: RowIdPath, body: MessageCreate, ctx: Ctx, response: Response
) -> dict[str, Any]:
    message, was_created = await sending.send_message(
        ctx,
        conversation_id,
        body=body.body,
        client_msg_id=body.client_msg_id,
        reply_to_id=body.reply_to_id,
    )
    created(response, was_created)
    return message


@router.post("/conversations/{conversation_id}/read", response_model=ReadState)
async def read(conversation_id: RowIdPath, body: ReadIn, ctx: Ctx) -> dict[str, Any]:
    return await changes.mark_read(ctx, conversation_id, body.message_id)


@router.patch("/messages/{message_id}", response_model=MessageOut)
async def edit(message_id: RowIdPath, body: MessageEdit, ctx: Ctx) -> dict[str, Any]:
    return await changes.edit_message(ctx, message_id, body.body)


@router.delete("/messages/{message_id}", status_code=204)
async def delete(message_id: RowIdPath, ctx: Ctx) -> Response:
    await changes.delete_message(ctx, message_id)
    return Response(status_code=204)


@router.get("/unread", response_model=UnreadOut)
async def unread(ctx: Ctx) -> dict[str, Any]:
    return await messaging.unread(ctx)


# --- the original plan's aliases ---


@router.post("/messages/send", status_code=201, response_model=MessageOut, tags=["aliases"])
async def send_direct(body: DirectSend, ctx: Ctx, response: Response) -> dict[str, Any]:
    message, was_created = await sending.send_direct(
        ctx, body.recipient_id, body=body.body, client_msg_id=body.client_msg_id
    )
    created(response, was_created)
    return message


@router.get("/messages/conversation/{user_id}", response_model=list[MessageOut], tags=["aliases"])
async def direct_history(
    user_id: UserIdPath,
    ctx: Ctx,
    before_id: MsgId = None,
    after_id: MsgId = None,
    limit: Limit = 50,
) -> list[dict[str, Any]]:
    return await messaging.direct_history(
        ctx, user_id, before_id=before_id, after_id=after_id, limit=limit
    )


@router.put("/messages/{message_id}/read", response_model=ReadState, tags=["aliases"])
async def read_message(message_id: RowIdPath, ctx: Ctx) -> dict[str, Any]:
    return await changes.mark_read_message(ctx, message_id)


@router.post("/groups", status_code=201, response_model=ConversationOut, tags=["groups"])
async def create_group(body: GroupCreate, ctx: Ctx) -> dict[str, Any]:
    conv_id = await messaging.start_group(ctx, body.member_ids, body.title)
    return await messaging.get_conversation(ctx, conv_id)


@router.get("/groups", response_model=list[ConversationOut], tags=["groups"])
async def list_groups(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    return await messaging.list_conversations(ctx, limit=limit, before=_aware(before), kind="group")


@router.get("/groups/{group_id}", response_model=ConversationOut, tags=["groups"])
async def get_group(group_id: RowIdPath, ctx: Ctx) -> dict[str, Any]:
    await groups.access_group(ctx, group_id)
    return await messaging.get_conversation(ctx, group_id)


@router.post("/groups/{group_id}/members", response_model=ConversationOut, tags=["groups"])
async def add_group_members(group_id: RowIdPath, body: UserIdsIn, ctx: Ctx) -> dict[str, Any]:
    await groups.add_members(ctx, group_id, body.user_ids)
    return await messaging.get_conversation(ctx, group_id)


@router.delete("/groups/{group_id}/members/{user_id}", status_code=204, tags=["groups"])
async def remove_group_member(group_id: RowIdPath, user_id: UserIdPath, ctx: Ctx) -> Response:
    await groups.remove_member(ctx, group_id, user_id)
    return Response(status_code=204)


@router.post(
    "/groups/{group_id}/messages", status_code=201, response_model=MessageOut, tags=["groups"]
)
async def send_group(
    group_id: RowIdPath, body: MessageCreate, ctx: Ctx, response: Response
) -> dict[str, Any]:
    await groups.access_group(ctx, group_id)
    message, was_created = await sending.send_message(
        ctx,
        group_id,
        body=body.body,
        client_msg_id=body.client_msg_id,
        reply_to_id=body.reply_to_id,
    )
    created(response, was_created)
    return message


@router.delete("/groups/{group_id}", status_code=204, tags=["groups"])
async def delete_group(group_id: RowIdPath, ctx: Ctx) -> Response:
    await groups.delete_group(ctx, group_id)
    return Response(status_code=204)
