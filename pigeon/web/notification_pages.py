"""Notification settings on one's profile, and the unsubscribe link in every digest.

The settings page is the same service as `PATCH /api/v1/me/notifications`. The unsubscribe
page needs no sign-in and no CSRF token: the signed link is the proof, and it can only turn
digests off. Mail clients that offer one-click unsubscribe (RFC 8058) POST to the same address
with `List-Unsubscribe=One-Click`; a person gets a page with a button first, so that a link
scanner following the GET turns nothing off.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from pigeon.accounts import notifications
from pigeon.accounts import service as accounts
from pigeon.core.deps import Rt, Uow
from pigeon.core.errors import NotFound
from pigeon.web.deps import Form, MaybeUser, PageCtx, PageUser, field, nav
from pigeon.web.render import render

router = APIRouter()
Username = Annotated[str, Path(min_length=1, max_length=32)]
# bounded by `read_unsubscribe_token`, so that a mangled link gets its clear page, not a 422
Token = Annotated[str, Path(min_length=1)]
NOTICES = {"saved": "Your notification settings are saved."}


def _settings_path(username: str) -> str:
    return f"/u/{username}/notifications"


@router.get("/notifications")
async def my_notifications(user: PageUser) -> Response:
    """A short address for emails: one's own settings page (after signing in)."""
    return RedirectResponse(_settings_path(user.username), status_code=303)


@router.get("/u/{username}/notifications")
async def notifications_page(
    request: Request, username: Username, ctx: PageCtx, notice: str | None = None
) -> Response:
    _mine(ctx.viewer.username, username)
    async with ctx.uow.read(ctx.dbs.app) as session:
        current = await notifications.get_notifications(session, ctx.viewer.id)
    context: dict[str, Any] = {
        **await nav(request, ctx.viewer, ctx.uow),
        "title": "Notifications",
        "section": "profile",
        "settings": current,
        "notice": NOTICES.get(notice or ""),
        "delay_minutes": max(1, round(ctx.rt.settings.digest_delay_seconds / 60)),
        "email_on": bool(ctx.rt.settings.smtp_host) and ctx.rt.settings.digest_interval_seconds > 0,
    }
    return render(request, "notifications.html", context)


@router.post("/u/{username}/notifications")
async def save_notifications(username: Username, ctx: PageCtx, form: Form) -> Response:
    _mine(ctx.viewer.username, username)
    await notifications.update_notifications(
        ctx.uow, ctx.rt.limiter, ctx.viewer.id, email_digest=field(form, "email_digest") == "1"
    )
    return RedirectResponse(_settings_path(ctx.viewer.username) + "?notice=saved", status_code=303)


def _mine(viewer: str, username: str) -> None:
    """Only one's own settings exist; anyone else's is not found (as for the account pages)."""
    if accounts.normalize_username(username) != viewer:
        raise NotFound("No such page.", code="not_found")


# --- unsubscribe ---


async def _render_unsubscribe(
    request: Request, user: Any, token: str, *, done: bool, status: int = 200
) -> Response:
    context: dict[str, Any] = {
        **await nav(request, user),
        "title": "Unsubscribe",
        "token": token,
        "done": done,
    }
    return render(request, "unsubscribe.html", context, status=status)


@router.get("/unsubscribe/{token}")
async def unsubscribe_page(
    request: Request, token: Token, rt: Rt, user: MaybeUser, done: bool = False
) -> Response:
    notifications.read_unsubscribe_token(rt.settings, token)  # a bad link says so at once
    return await _render_unsubscribe(request, user, token, done=done)


@router.post("/unsubscribe/{token}")
async def unsubscribe(
    request: Request, token: Token, rt: Rt, uow: Uow, user: MaybeUser
) -> Response:
    """From our page: back to it, saying it is done (POST-redirect-GET). From a mail client's
    one-click (`List-Unsubscribe=One-Click`, or anything else): 200 and the same words."""
    await notifications.unsubscribe(uow, rt.settings, token)
    form = await request.form()
    if field(form, "from") == "page":
        return RedirectResponse(f"/unsubscribe/{token}?done=1", status_code=303)
    return await _render_unsubscribe(request, user, token, done=True)
