"""The admin page's account tools: delete someone's account (from a confirm page, as
`DELETE /api/v1/admin/users/{id}` does) and retry an email the outbox gave up on (as
`POST /api/v1/admin/email/{id}/retry` does). The services decide who may; these pages ask."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.admin import closing
from pigeon.admin.schemas import AdminAccountDeleteIn
from pigeon.core.deps import Uow
from pigeon.core.errors import AppError
from pigeon.core.types import RowIdPath, UserIdPath
from pigeon.email import outbox
from pigeon.messaging.context import Ctx
from pigeon.web.admin_pages import render_admin
from pigeon.web.deps import Form, PageAdmin, PageCtx, field, nav
from pigeon.web.render import render

router = APIRouter()


async def _render_delete(
    request: Request,
    ctx: Ctx,
    user_id: int,
    *,
    error: str | None = None,
    messages: str = "",
    status: int = 200,
) -> Response:
    target = await closing.check_can_delete(ctx, user_id)
    context: dict[str, Any] = {
        **await nav(request, ctx.viewer, ctx.uow),
        "title": f"Delete {target.username}'s account",
        "section": "admin",
        "target": target,
        "error": error,
        "messages": messages,
    }
    return render(request, "admin/user_delete.html", context, status=status)


@router.get("/admin/users/{user_id}/delete")
async def delete_page(request: Request, user_id: UserIdPath, ctx: PageCtx) -> Response:
    return await _render_delete(request, ctx, user_id)


@router.post("/admin/users/{user_id}/delete")
async def delete_account(
    request: Request, user_id: UserIdPath, ctx: PageCtx, form: Form
) -> Response:
    messages = field(form, "messages")
    try:
        body = AdminAccountDeleteIn(messages=messages)
        await closing.delete_account(ctx, user_id, messages=body.messages)
    except ValidationError:
        error = "Choose what happens to their messages."
        return await _render_delete(
            request, ctx, user_id, error=error, messages=messages, status=422
        )
    except AppError as exc:
        if exc.status == 404:
            raise
        await ctx.uow.rollback()
        return await _render_delete(
            request, ctx, user_id, error=exc.message, messages=messages, status=exc.status
        )
    return RedirectResponse("/admin?notice=user_deleted#users-title", status_code=303)


@router.post("/admin/email/{email_id}/retry")
async def retry_email(request: Request, email_id: RowIdPath, user: PageAdmin, uow: Uow) -> Response:
    try:
        await outbox.retry_dead(uow, user, email_id)
    except AppError as exc:
        if exc.status == 404:
            raise
        await uow.rollback()
        return await render_admin(request, user, uow, error=exc.message, status=exc.status)
    return RedirectResponse("/admin?notice=email_retried#email-title", status_code=303)
