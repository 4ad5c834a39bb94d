"""Keeping conversations one's own way from the pages: mute, pin, archive, mark unread, and
remove a conversation for oneself. The same services as `PATCH` and `DELETE
/api/v1/conversations/{id}`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from pigeon.core.errors import Conflict, Invalid
from pigeon.core.types import RowIdPath
from pigeon.messaging import organising
from pigeon.web.deps import Form, PageCtx, field, safe_next
from pigeon.web.message_pages import render_thread

router = APIRouter()
# action -> (the change, where the person lands: None for back to the thread)
ACTIONS: dict[str, tuple[dict[str, bool], str | None]] = {
    "mute": ({"muted": True}, None),
    "unmute": ({"muted": False}, None),
    "pin": ({"pinned": True}, None),
    "unpin": ({"pinned": False}, None),
    "archive": ({"archived": True}, "/messages"),
    "unarchive": ({"archived": False}, None),
    "unread": ({"unread": True}, "/messages"),  # opening the thread would read it again
}


@router.post("/messages/{conversation_id}/organise")
async def organise(
    request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    action = field(form, "action")
    if action not in ACTIONS:
        raise Invalid("Pick what to do with the conversation.", fields={"action": "unknown"})
    change, landing = ACTIONS[action]
    try:
        await organising.organise(ctx, conversation_id, **change)
    except Conflict as exc:  # too many pinned
        await ctx.uow.rollback()
        return await render_thread(
            request, ctx, conversation_id, menu_error=exc.message, status=exc.status
        )
    target = safe_next(field(form, "next") or None, landing or f"/messages/{conversation_id}")
    return RedirectResponse(target, status_code=303)


@router.post("/messages/{conversation_id}/remove")
async def remove(conversation_id: RowIdPath, ctx: PageCtx, form: Form) -> Response:
    """The "Delete chat" button: gone from the viewer's list and history, until the next message."""
    await organising.remove_for_me(ctx, conversation_id)
    return RedirectResponse("/messages", status_code=303)
