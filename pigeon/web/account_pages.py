"""One's own account from the profile: change the password, delete the account. The same
services as `POST /api/v1/auth/password/change` and `DELETE /api/v1/me`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.admin import closing
from pigeon.admin.schemas import AccountDeleteIn
from pigeon.auth import service as auth
from pigeon.auth.principals import signin_of
from pigeon.auth.schemas import PasswordChangeIn
from pigeon.core.deps import SESSION_COOKIE
from pigeon.core.errors import AppError, NotFound
from pigeon.messaging.context import Ctx
from pigeon.web.deps import Form, PageCtx, field, nav
from pigeon.web.people_pages import render_profile
from pigeon.web.render import render
from pigeon.web.session import clear_session

router = APIRouter()
Username = Annotated[str, Path(min_length=1, max_length=32)]


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _mine(ctx: Ctx, username: str) -> None:
    """These pages exist only on one's own profile; anyone else's is not found."""
    if accounts.normalize_username(username) != ctx.viewer.username:
        raise NotFound("No such page.", code="not_found")


def _retry_after(response: Response, exc: AppError) -> Response:
    if exc.headers:
        response.headers.update(exc.headers)
    return response


@router.post("/u/{username}/password")
async def change_password(
    request: Request, username: Username, ctx: PageCtx, form: Form
) -> Response:
    _mine(ctx, username)
    try:
        body = PasswordChangeIn(
            current_password=field(form, "current_password"),
            new_password=field(form, "new_password"),
        )
        await auth.change_password(
            ctx.rt,
            ctx.uow,
            ctx.viewer,
            current_password=body.current_password,
            new_password=body.new_password,
            signin=signin_of(ctx.rt, None, request.cookies.get(SESSION_COOKIE)),
            address=_address(request),
        )
    except ValidationError:
        error = "Enter your current password and a new one (at most 256 characters)."
        return await render_profile(request, ctx, username, password_error=error, status=422)
    except AppError as exc:
        await ctx.uow.rollback()
        problem = (exc.fields or {}).get("new_password")
        error = f"New password: {problem}" if problem else exc.message
        response = await render_profile(
            request, ctx, username, password_error=error, status=exc.status
        )
        return _retry_after(response, exc)
    return RedirectResponse(f"/u/{ctx.viewer.username}?notice=password#password", status_code=303)


async def _render_delete(
    request: Request, ctx: Ctx, *, error: str | None = None, messages: str = "", status: int = 200
) -> Response:
    context: dict[str, Any] = {
        **await nav(request, ctx.viewer, ctx.uow),
        "title": "Delete your account",
        "section": "profile",
        "error": error,
        "messages": messages,
    }
    return render(request, "account_delete.html", context, status=status)


@router.get("/u/{username}/delete")
async def delete_page(request: Request, username: Username, ctx: PageCtx) -> Response:
    _mine(ctx, username)
    return await _render_delete(request, ctx)


@router.post("/u/{username}/delete")
async def delete_account(
    request: Request, username: Username, ctx: PageCtx, form: Form
) -> Response:
    _mine(ctx, username)
    messages = field(form, "messages")
    try:
        body = AccountDeleteIn(password=field(form, "password"), messages=messages)
        await closing.delete_own_account(
            ctx, password=body.password, messages=body.messages, address=_address(request)
        )
    except ValidationError:
        error = "Enter your password and choose what happens to your messages."
        return await _render_delete(request, ctx, error=error, messages=messages, status=422)
    except AppError as exc:
        await ctx.uow.rollback()
        response = await _render_delete(
            request, ctx, error=exc.message, messages=messages, status=exc.status
        )
        return _retry_after(response, exc)
    response = RedirectResponse("/login?deleted=1", status_code=303)
    clear_session(response, request)
    return response
