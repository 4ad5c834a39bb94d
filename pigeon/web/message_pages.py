"""The conversation list and the thread: read, reply, edit, delete — plus the HTML fragments the
script fetches to stay live (rendered by the same templates, so escaping has one path)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import privacy
from pigeon.core.errors import AppError, Invalid
from pigeon.core.types import INT64_MAX, RowIdPath, RowIdQuery, utc_within_range
from pigeon.messaging import (
    attachments,
    changes,
    eligibility,
    reactions,
    reports,
    request_state,
    sending,
    views,
)
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.messaging.schemas import (
    MAX_ATTACHMENTS,
    REACTION_PALETTE,
    MessageCreate,
    MessageEdit,
    MessageOut,
    ReportIn,
)
from pigeon.web.deps import Form, PageCtx, field, from_this_site, nav
from pigeon.web.render import render
from pigeon.web.reply_form import Reply, read_reply
from pigeon.web.views import (
    convo_label,
    convo_row,
    people_by_id,
    people_in,
    quote_view,
    report_reasons,
    seen_marker,
    shape_messages,
    with_departed,
)

router = APIRouter()
AfterId = Annotated[int, Path(ge=0, le=INT64_MAX)]
PAGE = 50
LIST_PAGE = 20
READ_ONLY = ("blocked", "outside_community")
READ_ONLY_SERVER = "Messaging is read-only for now: nothing new can be sent."
INBOX_NOTICES = {
    "left": "You left the group.",
    "group_deleted": "The group is deleted.",
    "removed": "You are no longer in that group.",
}


def page_before(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return utc_within_range(dt.datetime.fromisoformat(value))
    except ValueError:
        raise Invalid("That page link is not valid.", fields={"before": "not a time"}) from None


async def conversation_list(
    ctx: Ctx, before: dt.datetime | None = None, *, archived: bool = False
) -> tuple[list[dict[str, Any]], str | None]:
    page = await views.list_conversations(ctx, limit=LIST_PAGE, before=before, archived=archived)
    rows = [convo_row(c.model_dump(), ctx.viewer.id) for c in page]
    following = views.next_before(page, LIST_PAGE, archived=archived)
    older = following.isoformat() if following else None
    return rows, older


@router.get("/messages")
async def inbox(
    request: Request,
    ctx: PageCtx,
    before: str | None = None,
    partial: Annotated[int, Query(ge=0, le=1)] = 0,
    current: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    archived: Annotated[int, Query(ge=0, le=1)] = 0,
    notice: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    rows, older = await conversation_list(ctx, page_before(before), archived=bool(archived))
    context = {
        "rows": rows,
        "older": older,
        "current": current,
        "paged": bool(before),
        "archived": bool(archived),
        "notice": INBOX_NOTICES.get(notice),
    }
    if partial:  # the script's refresh: the "Requests (N)" link with the rows
        async with ctx.uow.read(ctx.dbs.messaging) as session:
            context["requests_count"] = (
                await messaging.unread_for(session, ctx.viewer.id)
            ).requests
        return render(request, "messages/_list.html", context)
    title = "Archived" if archived else "Messages"
    context.update(await nav(request, ctx.viewer), title=title, section="messages")
    return render(request, "messages/list.html", context)


async def render_thread(
    request: Request,
    ctx: Ctx,
    conversation_id: int,
    *,
    before: int | None = None,
    edit: int | None = None,
    reply: int | None = None,
    report: int | None = None,
    draft: str = "",
    error: str | None = None,
    edit_error: str | None = None,
    menu_error: str | None = None,
    reacting: dict[str, Any] | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    convo = await views.get_conversation(ctx, conversation_id)
    page = await messaging.list_messages(ctx, conversation_id, before_id=before, limit=PAGE + 1)
    has_older = len(page) > PAGE
    dumped = [m.model_dump() for m in (page[1:] if has_older else page)]
    people = await with_departed(ctx.rt, people_by_id(convo.model_dump()), people_in(dumped))
    messages = shape_messages(
        dumped, ctx.viewer.id, convo.model_dump(), ctx.settings.media_thumbnail_px, people
    )
    if reacting and all(m["id"] != reacting["id"] for m in messages):
        error = reacting["error"]  # its menu is not on this page: say it below, as others
    # the divider goes above the first message on this page the viewer has not read; it says
    # how many they have not read in all (some may be older than this page)
    fresh = [
        m
        for m in messages
        if m["id"] > convo.last_read_message_id and m["sender_id"] != ctx.viewer.id
    ]
    unread_from = fresh[0]["id"] if fresh and before is None else None
    unread_before = convo.unread_count  # as it stood before this visit reads it
    # opening the thread reads it, unless the link came from another site: a page elsewhere
    # must not be able to clear a badge or show "Seen"
    unread = messages and (messages[-1]["id"] > convo.last_read_message_id or convo.marked_unread)
    if before is None and unread and from_this_site(request):
        await changes.mark_read(ctx, conversation_id, messages[-1]["id"])
        convo = await views.get_conversation(ctx, conversation_id)
    rows, older = await conversation_list(ctx)
    others = [p.id for p in convo.participants if p.id != ctx.viewer.id]
    may = (
        await eligibility.for_person(ctx, others[0]) if convo.kind == "direct" and others else None
    )
    view = convo.model_dump()
    blocked_banner = None
    if (
        may is not None
        and may.code == "blocked"
        and others[0] in await messaging.blocked_senders(ctx)
    ):
        other = people_by_id(view)[others[0]]
        if other["username"]:
            blocked_banner = {"name": other["display_name"], "username": other["username"]}
    replying = await _replying(ctx, view, reply) if reply else None
    presence = await _presence(request, ctx, view, others)
    read_only: Any = may if may is not None and may.code in READ_ONLY else None
    if await ctx.rt.switches.messaging_mode() == "read_only":  # the whole server, for now
        read_only = {"code": "messaging_read_only", "reason": READ_ONLY_SERVER}
    context = {
        # a conversation nobody may write in now (a block, no shared community, read-only)
        "read_only": read_only,
        **await nav(request, ctx.viewer, ctx.uow),
        "title": convo_label(view, ctx.viewer.id),
        "section": "messages",
        "convo": view,
        "label": convo_label(view, ctx.viewer.id),
        "people": {**people, **people_by_id(view)},
        "names": {
            str(uid): p["display_name"] for uid, p in {**people, **people_by_id(view)}.items()
        },
        "messages": messages,
        "older_id": messages[0]["id"] if has_older and messages else None,
        "paged": before is not None,
        "seen_id": seen_marker(view, messages, ctx.viewer.id),
        "unread_from": unread_from,
        "unread_count": max(len(fresh), unread_before),
        "replying": replying,
        "blocked_banner": blocked_banner,
        "presence": presence,
        "edit_id": edit,
        "report_id": report,
        "edit_error": edit_error,
        "menu_error": menu_error,
        "reacting": reacting,
        "notice": notice,
        "palette": REACTION_PALETTE,
        "reasons": report_reasons(),
        "draft": draft,
        "error": error,
        "client_msg_id": secrets.token_urlsafe(12),
        "rows": rows,
        "older": older,
        "current": conversation_id,
        "max_chars": ctx.settings.max_body_chars,
        "max_files": MAX_ATTACHMENTS,
    }
    return render(request, "messages/thread.html", context, status=status)


async def _presence(
    request: Request, ctx: Ctx, convo: dict[str, Any], others: list[int]
) -> dict[str, Any] | None:
    """What a direct thread's header says of the other person: online, or when they were last
    seen; None where nothing may be said."""
    if convo["kind"] != "direct" or not others:
        return None
    other_id = others[0]
    # nothing but the messages passes while it is a request (`request_state`), and then only
    # what `withheld` allows
    members = (await messaging.access_conversation(ctx, convo["id"])).members
    if request_state.is_pending(members) or other_id in await privacy.last_seen_hidden(
        ctx.rt, ctx.viewer, [other_id]
    ):
        return None
    online = await request.app.state.hub.presence.is_online(other_id)
    seen_at = people_by_id(convo)[other_id]["last_seen_at"]
    return {"user_id": other_id, "online": online, "last_seen_at": seen_at}


@router.get("/messages/{conversation_id}/presence")
async def thread_presence(request: Request, conversation_id: RowIdPath, ctx: PageCtx) -> Response:
    """The header's presence as it stands now, for the script to ask once its live socket is
    open: a change between the page's render and the socket's hello reaches it in no frame."""
    convo = (await views.get_conversation(ctx, conversation_id)).model_dump()
    others = [p["id"] for p in convo["participants"] if p["id"] != ctx.viewer.id]
    context = {"presence": await _presence(request, ctx, convo, others)}
    return render(request, "messages/_presence.html", context)


async def _replying(ctx: Ctx, convo: dict[str, Any], message_id: int) -> dict[str, Any] | None:
    """The message the composer answers (the Reply action without script), as its quote."""
    found = await messaging.list_messages(ctx, convo["id"], after_id=message_id - 1, limit=1)
    target = next((m for m in found if m.id == message_id and not m.deleted), None)
    if target is None:
        return None
    quote = messaging.quote_out(
        target.id, target.sender_id, target.body, attachments=len(target.attachments), deleted=False
    )
    people = await with_departed(ctx.rt, people_by_id(convo), [target.sender_id])
    return quote_view(quote.model_dump(), ctx.viewer.id, people, convo["id"])


@router.get("/messages/{conversation_id}")
async def thread(
    request: Request,
    conversation_id: RowIdPath,
    ctx: PageCtx,
    before: RowIdQuery = None,
    edit: RowIdQuery = None,
    reply: RowIdQuery = None,
    report: RowIdQuery = None,
    at: RowIdQuery = None,
    reported: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:
    """The thread; `edit`, `reply` and `report` open that form for one message (the menu's
    links, which work without script); `at` opens it around a message (a search result): the
    newest page, live, when the message is on it, else the page with the message in its
    middle."""
    notice = "Thanks, the moderators will look at it." if reported else None
    if at is not None and before is None:
        newer = await messaging.list_messages(ctx, conversation_id, after_id=at, limit=PAGE // 2)
        if len(newer) == PAGE // 2:
            before = newer[-1].id + 1
    return await render_thread(
        request,
        ctx,
        conversation_id,
        before=before,
        edit=edit,
        reply=reply,
        report=report,
        notice=notice,
    )


@router.post("/messages/{conversation_id}/m/{message_id}/report")
async def report(
    request: Request, conversation_id: RowIdPath, message_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    """Report a message from its menu: the same service as `POST /api/v1/messages/{id}/report`."""
    try:
        body = ReportIn.model_validate(
            {"reason": field(form, "reason"), "details": field(form, "details")}
        )
        await reports.report_message(ctx, message_id, reason=body.reason, details=body.details)
    except ValidationError:
        return await render_thread(
            request,
            ctx,
            conversation_id,
            report=message_id,
            error="Pick a reason, and keep the details under 1,000 characters.",
            status=422,
        )
    except AppError as exc:
        if not _refusal(exc):
            raise
        await ctx.uow.rollback()
        return await render_thread(
            request, ctx, conversation_id, error=exc.message, status=exc.status
        )
    return RedirectResponse(
        f"/messages/{conversation_id}?reported=1#m{message_id}", status_code=303
    )


def _refusal(exc: AppError) -> bool:
    """Errors the reply form explains in place (the rest get the error page)."""
    return exc.status in (400, 403, 409, 413, 415, 422, 429) and exc.code not in (
        "messaging_disabled",
        "csrf_failed",
    )


@router.post("/messages/{conversation_id}/send")
async def send(request: Request, conversation_id: RowIdPath, ctx: PageCtx) -> Response:
    """The reply form, with or without files (it reads its own body: see `reply_form`)."""
    reply = Reply()
    try:
        return await _send(request, conversation_id, ctx, reply)
    finally:
        reply.discard()


async def _send(request: Request, conversation_id: int, ctx: Ctx, reply: Reply) -> Response:
    try:
        await read_reply(request, ctx, reply)
        data = MessageCreate(body=reply.body, client_msg_id=reply.client_msg_id)
        message = await sending.send_with_files(
            ctx,
            conversation_id,
            body=data.body,
            client_msg_id=data.client_msg_id,
            files=reply.files,
            attachment_ids=reply.attachment_ids(),
            reply_to_id=reply.reply_to_id,
        )
    except ValidationError:
        return await render_thread(
            request,
            ctx,
            conversation_id,
            draft=reply.body,
            reply=_kept_reply(reply),
            status=422,
            error="That message is too long to send.",
        )
    except AppError as exc:
        if not _refusal(exc):
            if exc.code != "csrf_failed":
                request.state.draft = reply.body  # the error page shows it: nothing is lost
            raise
        await ctx.uow.rollback()  # uploads included: their files go with their rows
        again = " Choose the files again to send them." if reply.files else ""
        response = await render_thread(
            request,
            ctx,
            conversation_id,
            draft=reply.body,
            reply=_kept_reply(reply),
            error=exc.message + again,
            status=exc.status,
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    return RedirectResponse(f"/messages/{conversation_id}#m{message.id}", status_code=303)


def _kept_reply(reply: Reply) -> int | None:
    """The reply a refused send was answering, to show it again (if it was a valid id)."""
    try:
        return reply.reply_to_id
    except AppError:
        return None


@router.post("/messages/{conversation_id}/m/{message_id}/edit")
async def edit(
    request: Request, conversation_id: RowIdPath, message_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    try:
        data = MessageEdit(body=field(form, "body"))
        await changes.edit_message(ctx, message_id, data.body)
    except (ValidationError, AppError) as exc:
        if isinstance(exc, AppError) and not _refusal(exc):
            raise
        await ctx.uow.rollback()
        message = exc.message if isinstance(exc, AppError) else "That message is too long."
        return await render_thread(
            request, ctx, conversation_id, edit=message_id, edit_error=message, status=422
        )
    return RedirectResponse(f"/messages/{conversation_id}#m{message_id}", status_code=303)


@router.post("/messages/{conversation_id}/m/{message_id}/delete")
async def delete(
    request: Request, conversation_id: RowIdPath, message_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    await changes.delete_message(ctx, message_id)
    return RedirectResponse(f"/messages/{conversation_id}#m{message_id}", status_code=303)


@router.post("/messages/{conversation_id}/m/{message_id}/react")
async def react(
    request: Request, conversation_id: RowIdPath, message_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    """A reaction pill, the palette or an emoji typed in the menu: `emoji`, and `remove=1` to
    take it back. A typed one that is not one emoji is said under its field, the menu open."""
    emoji = field(form, "emoji")
    try:
        await reactions.react(ctx, message_id, emoji, add=field(form, "remove") != "1")
    except AppError as exc:
        if not _refusal(exc):
            raise
        await ctx.uow.rollback()
        typed = {"id": message_id, "value": emoji, "error": exc.message}
        wrong = exc.code == "invalid_emoji"
        response = await render_thread(
            request,
            ctx,
            conversation_id,
            error=None if wrong else exc.message,
            reacting=typed if wrong else None,
            status=exc.status,
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    return RedirectResponse(f"/messages/{conversation_id}#m{message_id}", status_code=303)


@router.post("/messages/{conversation_id}/files/{attachment_id}/remove")
async def remove_file(
    conversation_id: RowIdPath, attachment_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    """The uploader takes a file back; the message says "Attachment removed"."""
    await attachments.remove_attachment(ctx, attachment_id)
    return RedirectResponse(f"/messages/{conversation_id}", status_code=303)


# --- fragments for the script ---


async def _fragment(
    request: Request,
    ctx: Ctx,
    conversation_id: int,
    messages: list[MessageOut],
    headers: dict[str, str] | None = None,
) -> Response:
    convo = (await views.get_conversation(ctx, conversation_id)).model_dump()
    dumped = [m.model_dump() for m in messages]
    people = await with_departed(ctx.rt, people_by_id(convo), people_in(dumped))
    box = ctx.settings.media_thumbnail_px
    context = {
        "convo": convo,
        "people": people,
        "messages": shape_messages(dumped, ctx.viewer.id, convo, box, people),
        "palette": REACTION_PALETTE,
        "reasons": report_reasons(),
        "viewer": ctx.viewer,
        "seen_id": None,
        "edit_id": None,
        "report_id": None,
    }
    response = render(request, "messages/_messages.html", context)
    if headers:
        response.headers.update(headers)
    return response


@router.get("/messages/{conversation_id}/before/{message_id}")
async def before(
    request: Request, conversation_id: RowIdPath, message_id: RowIdPath, ctx: PageCtx
) -> Response:
    """The page of history before a message, for the script to add above it as the reader
    scrolls up; `X-Older-Id` names where the next one ends (absent at the beginning)."""
    page = await messaging.list_messages(ctx, conversation_id, before_id=message_id, limit=PAGE + 1)
    has_older = len(page) > PAGE
    shown = page[1:] if has_older else page
    headers = {"X-Older-Id": str(shown[0].id)} if has_older and shown else None
    return await _fragment(request, ctx, conversation_id, shown, headers)


@router.get("/messages/{conversation_id}/after/{message_id}")
async def after(
    request: Request, conversation_id: RowIdPath, message_id: AfterId, ctx: PageCtx
) -> Response:
    messages = await messaging.list_messages(
        ctx, conversation_id, after_id=max(message_id, 0), limit=200
    )
    return await _fragment(request, ctx, conversation_id, messages)


@router.get("/messages/{conversation_id}/m/{message_id}")
async def one(
    request: Request, conversation_id: RowIdPath, message_id: RowIdPath, ctx: PageCtx
) -> Response:
    found = await messaging.list_messages(ctx, conversation_id, after_id=message_id - 1, limit=1)
    return await _fragment(request, ctx, conversation_id, [m for m in found if m.id == message_id])
