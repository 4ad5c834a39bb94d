"""Suspend and lift from the pages (the people table and a profile): the same services as
`POST` and `DELETE /api/v1/admin/users/{id}/suspend`, so the same people may do it, it is
audited the same way, and the person's sign-ins end (or may start again) at once.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from pigeon.admin import moderation
from pigeon.core.errors import AppError, Invalid
from pigeon.core.types import UserIdPath
from pigeon.web.admin_pages import render_admin
from pigeon.web.deps import Form, PageCtx, field
from pigeon.web.moderation_pages import PageStaff
from pigeon.web.people_pages import render_profile
from pigeon.web.suspension_view import duration_until

router = APIRouter()


def _back(form_value: str) -> str:
    """Only the two pages that carry these forms, on this site."""
    ok = form_value.startswith(("/admin", "/u/")) and "//" not in form_value
    return form_value if ok and "\\" not in form_value else "/admin"


def _with_notice(back: str, notice: str) -> str:
    path, _, anchor = back.partition("#")
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}notice={notice}" + (f"#{anchor}" if anchor else "")


async def _in_place(request: Request, ctx: PageCtx, back: str, exc: AppError) -> Response:
    """The page the form was on, with what went wrong said there."""
    await ctx.uow.rollback()
    if back.startswith("/u/"):
        username = back[3:].split("#")[0].split("?")[0]
        return await render_profile(request, ctx, username, error=exc.message, status=exc.status)
    if not ctx.viewer.is_admin:  # the people table is the admin page's
        raise exc
    return await render_admin(request, ctx.viewer, ctx.uow, error=exc.message, status=exc.status)


@router.post("/admin/users/{user_id}/suspend")
async def suspend(
    request: Request, user_id: UserIdPath, user: PageStaff, ctx: PageCtx, form: Form
) -> Response:
    """Suspend for a chosen time, or until lifted."""
    back = _back(field(form, "back"))
    try:
        known, until = duration_until(field(form, "for"), ctx.rt.clock.now())
        if not known:
            raise Invalid("Pick how long the suspension lasts.", fields={"for": "unknown"})
        reason = field(form, "reason").strip()
        if len(reason) > 1000:
            raise Invalid("Keep the reason under 1,000 characters.", fields={"reason": "too long"})
        await moderation.suspend(ctx.rt, ctx.uow, user, user_id, until=until, reason=reason)
    except AppError as exc:
        if exc.status == 404:
            raise
        return await _in_place(request, ctx, back, exc)
    return RedirectResponse(_with_notice(back, "suspended"), status_code=303)


@router.post("/admin/users/{user_id}/lift")
async def lift(
    request: Request, user_id: UserIdPath, user: PageStaff, ctx: PageCtx, form: Form
) -> Response:
    """Lift a suspension: the person may sign in again at once."""
    back = _back(field(form, "back"))
    try:
        await moderation.unsuspend(ctx.rt, ctx.uow, user, user_id)
    except AppError as exc:
        if exc.status == 404:
            raise
        return await _in_place(request, ctx, back, exc)
    return RedirectResponse(_with_notice(back, "lifted"), status_code=303)
