"""Conversations and messages, plus the original plan's aliases over the same services."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask

from pigeon.accounts.schemas import UserIdsIn
from pigeon.core.deps import CurrentUser, Rt
from pigeon.core.errors import Invalid
from pigeon.core.types import INT64_MAX, Instant, RowIdPath, UserIdPath
from pigeon.core.uow import owning
from pigeon.messaging import (
    changes,
    export,
    finder,
    groups,
    organising,
    reactions,
    reports,
    search,
    sending,
    views,
)
from pigeon.messaging import service as messaging
from pigeon.messaging.deps import MessagingCtx as Ctx
from pigeon.messaging.deps import SendCtx
from pigeon.messaging.schemas import (
    ConversationCreate,
    ConversationOut,
    ConversationUpdate,
    DirectSend,
    GroupCreate,
    MessageCreate,
    MessageEdit,
    MessageOut,
    ReactionIn,
    ReactionOut,
    ReadIn,
    ReadState,
    ReportIn,
    ReportOut,
    UnreadOut,
)

router = APIRouter(tags=["messaging"])
JSON = "application/json"


Limit = Annotated[int, Query(ge=1, le=200)]
MsgId = Annotated[int | None, Query(ge=1, le=INT64_MAX)]


def as_json(model: BaseModel, status: int) -> Response:
    """The hottest answer, serialized once by its own model (the document still says
    `MessageOut`): the route's value needs no second validation on the way out."""
    return Response(model.__pydantic_serializer__.to_json(model), status, media_type=JSON)


def created(response: Response, was_created: bool) -> None:
    response.status_code = 201 if was_created else 200


@router.post("/conversations", status_code=201, response_model=ConversationOut)
async def start(body: ConversationCreate, ctx: Ctx, response: Response) -> ConversationOut:
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
    return await views.get_conversation(ctx, conv_id)


@router.get("/conversations", response_model=list[ConversationOut])
async def conversations(
    ctx: Ctx,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Instant | None = None,
    archived: Annotated[bool, Query(description="the archived ones instead")] = False,
    requests: Annotated[
        bool, Query(description="the message requests I have not accepted instead")
    ] = False,
) -> list[ConversationOut]:
    """Mine, latest activity first; my pinned ones lead the first page. Archived ones (and
    ones I removed for myself) stay out until something new happens in them. Message requests
    (a direct conversation from someone who never wrote to me, until I accept or reply) are
    never here but in `?requests=true`."""
    page = await views.list_conversations(
        ctx, limit=limit, before=before, archived=archived, requests=requests
    )
    following = views.next_before(page, limit, archived=archived or requests)
    if following is not None:
        response.headers["X-Next-Before"] = following.isoformat()
    return page


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def conversation(conversation_id: RowIdPath, ctx: Ctx) -> ConversationOut:
    return await views.get_conversation(ctx, conversation_id)


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut)
async def update(conversation_id: RowIdPath, body: ConversationUpdate, ctx: Ctx) -> ConversationOut:
    """Rename a group (`title`, for everyone), and keep the conversation your way (`muted`,
    `pinned` (at most 3), `archived`, `unread`), for you alone."""
    if body.title is not None:
        await groups.rename(ctx, conversation_id, body.title)
    await organising.organise(
        ctx,
        conversation_id,
        muted=body.muted,
        pinned=body.pinned,
        archived=body.archived,
        unread=body.unread,
    )
    return await views.get_conversation(ctx, conversation_id)


@router.delete("/conversations/{conversation_id}", status_code=204)
async def remove_for_me(conversation_id: RowIdPath, ctx: Ctx) -> Response:
    """Remove the conversation for yourself: out of your list, its messages so far out of
    your history, until the next message. The others keep everything."""
    await organising.remove_for_me(ctx, conversation_id)
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/messages", response_model=list[MessageOut])
async def history(
    conversation_id: RowIdPath,
    ctx: Ctx,
    before_id: MsgId = None,
    after_id: MsgId = None,
    limit: Limit = 50,
) -> list[MessageOut]:
    return await messaging.list_messages(
        ctx, conversation_id, before_id=before_id, after_id=after_id, limit=limit
    )


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=201,
    response_model=MessageOut,
    responses={200: {"model": MessageOut, "description": "a retry: the original message"}},
)
async def send(conversation_id: RowIdPath, body: MessageCreate, ctx: SendCtx) -> Response:
    """Send a message; a retry with the same `client_msg_id` returns the original (200)."""
    async with owning(ctx.uow):
        message, was_created = await sending.send_created(ctx, conversation_id, body)
    return as_json(message, 201 if was_created else 200)


@router.post(
    "/messages/{message_id}/reactions",
    status_code=201,
    response_model=list[ReactionOut],
    responses={200: {"description": "you had already reacted with it: nothing changed"}},
)
async def add_reaction(
    message_id: RowIdPath, body: ReactionIn, ctx: Ctx, response: Response
) -> list[ReactionOut]:
    """React to a message you can see with one emoji (one of each per person); answers the
    message's reactions. Everyone in the conversation hears of it live (`reaction.added`)."""
    found, changed = await reactions.react(ctx, message_id, body.emoji, add=True)
    created(response, changed)
    return found


@router.delete("/messages/{message_id}/reactions", response_model=list[ReactionOut])
async def remove_reaction(
    message_id: RowIdPath,
    ctx: Ctx,
    body: ReactionIn | None = None,
    emoji: Annotated[str | None, Query(max_length=64, description="instead of a body")] = None,
) -> list[ReactionOut]:
    """Take back your reaction (`{emoji}` in the body, or `?emoji=`); `reaction.removed`."""
    chosen = body.emoji if body is not None else emoji
    if chosen is None:
        raise Invalid("Say which emoji to take back.", fields={"emoji": "required"})
    found, _ = await reactions.react(ctx, message_id, chosen, add=False)
    return found


@router.post("/conversations/{conversation_id}/read", response_model=ReadState)
async def read(conversation_id: RowIdPath, body: ReadIn, ctx: Ctx) -> ReadState:
    return await changes.mark_read(ctx, conversation_id, body.message_id)


@router.patch("/messages/{message_id}", response_model=MessageOut)
async def edit(message_id: RowIdPath, body: MessageEdit, ctx: Ctx) -> MessageOut:
    return await changes.edit_message(ctx, message_id, body.body)


@router.delete("/messages/{message_id}", status_code=204)
async def delete(message_id: RowIdPath, ctx: Ctx) -> Response:
    await changes.delete_message(ctx, message_id)
    return Response(status_code=204)


@router.get("/unread", response_model=UnreadOut)
async def unread(ctx: Ctx) -> UnreadOut:
    return await messaging.unread(ctx)


@router.post("/messages/{message_id}/report", status_code=201, response_model=ReportOut)
async def report(message_id: RowIdPath, body: ReportIn, ctx: Ctx, response: Response) -> Any:
    """Report a message to the moderators; reporting it again updates your report (200)."""
    found, was_created = await reports.report_message(
        ctx, message_id, reason=body.reason, details=body.details
    )
    created(response, was_created)
    return found


@router.post("/users/{user_id}/report", status_code=201, response_model=ReportOut, tags=["users"])
async def report_user(user_id: UserIdPath, body: ReportIn, ctx: Ctx, response: Response) -> Any:
    """Report a person (someone in one of your communities) to the moderators, beside the
    reports on messages; reporting them again while it is open updates your report (200)."""
    found, was_created = await reports.report_person(
        ctx, user_id, reason=body.reason, details=body.details
    )
    created(response, was_created)
    return found


@router.get("/messages/search", response_model=list[MessageOut])
async def search_messages(
    ctx: Ctx,
    q: Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")] = "",
    conversation_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[MessageOut]:
    """My messages containing `q`, newest first (page with `before_id`)."""
    return await search.search_messages(
        ctx, q, conversation_id=conversation_id, before_id=before_id, limit=limit
    )


@router.get("/search/conversations", response_model=list[ConversationOut])
async def search_conversations(
    ctx: Ctx,
    q: Annotated[str, Query(max_length=100, pattern=r"^[^\x00]*$")] = "",
    limit: Annotated[int, Query(ge=1, le=50)] = 20,
) -> list[ConversationOut]:
    """My conversations whose group title, or another member's display name or username,
    contains `q` (case and accents aside), latest activity first; archived ones included.
    People I could start one with: `GET /users/search`."""
    return await finder.find_conversations(ctx, q, limit=limit)


@router.get(
    "/me/export",
    tags=["users"],
    response_class=FileResponse,
    responses={200: {"content": {"application/zip": {}}}},
)
async def my_export(user: CurrentUser, rt: Rt) -> Response:
    """Your profile, conversations, messages (`export.json`) and the files you sent
    (`files/`), as a zip to keep."""
    name, path = await export.export_file(rt, user.id, rt.settings.data_dir / "exports")
    return FileResponse(
        path,
        media_type="application/zip",
        filename=name,
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


# --- the original plan's aliases ---


@router.post("/messages/send", status_code=201, response_model=MessageOut, tags=["aliases"])
async def send_direct(body: DirectSend, ctx: Ctx, response: Response) -> MessageOut:
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
) -> list[MessageOut]:
    return await messaging.direct_history(
        ctx, user_id, before_id=before_id, after_id=after_id, limit=limit
    )


@router.put("/messages/{message_id}/read", response_model=ReadState, tags=["aliases"])
async def read_message(message_id: RowIdPath, ctx: Ctx) -> ReadState:
    return await changes.mark_read_message(ctx, message_id)


@router.post("/groups", status_code=201, response_model=ConversationOut, tags=["groups"])
async def create_group(body: GroupCreate, ctx: Ctx) -> ConversationOut:
    conv_id = await messaging.start_group(ctx, body.member_ids, body.title)
    return await views.get_conversation(ctx, conv_id)


@router.get("/groups", response_model=list[ConversationOut], tags=["groups"])
async def list_groups(
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before: Instant | None = None,
    archived: Annotated[bool, Query(description="the archived ones instead")] = False,
) -> list[ConversationOut]:
    """Mine, latest activity first; my pinned ones lead the first page. Archived ones (and
    ones I removed for myself) stay out until something new happens in them."""
    return await views.list_conversations(ctx, limit=limit, before=before, kind="group")


@router.get("/groups/{group_id}", response_model=ConversationOut, tags=["groups"])
async def get_group(group_id: RowIdPath, ctx: Ctx) -> ConversationOut:
    await groups.access_group(ctx, group_id)
    return await views.get_conversation(ctx, group_id)


@router.post("/groups/{group_id}/members", response_model=ConversationOut, tags=["groups"])
async def add_group_members(group_id: RowIdPath, body: UserIdsIn, ctx: Ctx) -> ConversationOut:
    """The owner and group admins add people from their communities (403 `not_group_admin`);
    adding is starting a conversation with them: free members may not (403
    `initiation_not_allowed`), nobody across a block (403 `blocked`), someone outside their
    communities is 404 `user_not_found`, past the size limit 422 `group_too_large`. Members hear
    `conversation.updated` with `members_added`."""
    await groups.add_members(ctx, group_id, body.user_ids)
    return await views.get_conversation(ctx, group_id)


@router.delete("/groups/{group_id}/members/{user_id}", status_code=204, tags=["groups"])
async def remove_group_member(group_id: RowIdPath, user_id: UserIdPath, ctx: Ctx) -> Response:
    """Leave (your own id), or, as the owner or a group admin, remove someone; nobody removes
    the owner. An owner who leaves hands the group to the longest-standing member who may start
    conversations. Everyone, the removed person included, hears `member_removed`."""
    await groups.remove_member(ctx, group_id, user_id)
    return Response(status_code=204)


@router.post(
    "/groups/{group_id}/messages", status_code=201, response_model=MessageOut, tags=["groups"]
)
async def send_group(
    group_id: RowIdPath, body: MessageCreate, ctx: Ctx, response: Response
) -> MessageOut:
    await groups.access_group(ctx, group_id)
    message, was_created = await sending.send_message(
        ctx,
        group_id,
        body=body.body,
        client_msg_id=body.client_msg_id,
        reply_to_id=body.reply_to_id,
        attachment_ids=body.attachment_ids,
    )
    created(response, was_created)
    return message


@router.delete("/groups/{group_id}", status_code=204, tags=["groups"])
async def delete_group(group_id: RowIdPath, ctx: Ctx) -> Response:
    """The owner deletes the group for everyone (403 `not_group_owner` for anyone else)."""
    await groups.delete_group(ctx, group_id)
    return Response(status_code=204)
