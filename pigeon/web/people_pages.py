"""Starting conversations and profiles: who I may message (and why not), block and unblock."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import blocks, privacy
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.accounts.schemas import UserUpdate
from pigeon.accounts.views import user_dict
from pigeon.auth import account_email
from pigeon.core.errors import AppError, NotFound
from pigeon.messaging import eligibility, reports
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.messaging.schemas import ReportIn
from pigeon.web import invitation_view, suspension_view
from pigeon.web.deps import Form, PageCtx, field, int_field, nav, safe_next
from pigeon.web.render import render
from pigeon.web.views import report_reasons

router = APIRouter()
Username = Annotated[str, Path(min_length=1, max_length=32)]
NOTICES = {
    "blocked": "Blocked. They can no longer message you, and you cannot message them.",
    "unblocked": "Unblocked.",
    "saved": "Your profile is saved.",
    "reported": "Thanks, the moderators will look at it.",
    "suspended": "Suspended. They are signed out everywhere and cannot sign in until it ends.",
    "lifted": "Suspension lifted. They can sign in again now.",
    "password": "Password changed. Your other sessions were signed out.",
    "joined": "You joined the community: its members can reach you now.",
    "declined": "Invitation declined. Nothing changed for you.",
    "email": "Check the inbox of the new address: the change happens when you follow the link.",
}


async def render_new(
    request: Request,
    ctx: Ctx,
    *,
    q: str = "",
    error: str | None = None,
    picked: set[int] | None = None,
    title: str = "",
    status: int = 200,
) -> Response:
    user = ctx.viewer
    await messaging.require_enabled(ctx)
    can = await eligibility.viewer_can_start(ctx)
    async with ctx.dbs.app.read() as session:
        found = await accounts.search_users(session, user, q=q, limit=30)
    allowed = await eligibility.for_people(ctx, [u.id for u in found])
    people = [{"user": user_dict(u), "may": allowed[u.id]} for u in found if u.id in allowed]
    context = {
        **await nav(request, user),
        "title": "New conversation",
        "section": "new",
        "q": q,
        "people": people,
        "can": can,
        "error": error,
        "picked": picked or set(),
        "group_title": title,
    }
    return render(request, "messages/new.html", context, status=status)


@router.get("/messages/new")
async def new(
    request: Request, ctx: PageCtx, q: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    return await render_new(request, ctx, q=q)


@router.post("/messages/new")
async def start_direct(request: Request, ctx: PageCtx, form: Form) -> Response:
    other = int_field(form, "user_id")
    try:
        if other is None:
            raise NotFound("Pick someone to message.", code="user_not_found")
        conv_id, _ = await messaging.start_direct(ctx, other)
    except AppError as exc:
        if exc.code == "messaging_disabled":
            raise
        await ctx.uow.rollback()
        return await render_new(
            request, ctx, q=field(form, "q"), error=exc.message, status=exc.status
        )
    return RedirectResponse(f"/messages/{conv_id}", status_code=303)


@router.post("/messages/new/group")
async def start_group(request: Request, ctx: PageCtx, form: Form) -> Response:
    ids = {
        int(v) for v in form.getlist("member") if isinstance(v, str) and v.isdigit() and len(v) < 11
    }
    title = field(form, "title")
    try:
        conv_id = await messaging.start_group(ctx, sorted(ids), title)
    except AppError as exc:
        if exc.code == "messaging_disabled":
            raise
        await ctx.uow.rollback()
        return await render_new(
            request,
            ctx,
            q=field(form, "q"),
            error=exc.message,
            picked=ids,
            title=title,
            status=exc.status,
        )
    return RedirectResponse(f"/messages/{conv_id}", status_code=303)


async def _profile_user(ctx: Ctx, username: str) -> User:
    viewer = ctx.viewer
    async with ctx.uow.read(ctx.dbs.app) as session:
        found = await accounts.find_by_login(session, username)
        if found is None or found.username != accounts.normalize_username(username):
            raise NotFound("No such person.", code="user_not_found")
        return await accounts.visible_user(session, viewer, found.id)


@router.get("/u/{username}")
async def profile(
    request: Request, username: Username, ctx: PageCtx, notice: str | None = None
) -> Response:
    return await render_profile(request, ctx, username, notice=NOTICES.get(notice or ""))


async def render_profile(
    request: Request,
    ctx: Ctx,
    username: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    report: dict[str, str] | None = None,
    password_error: str | None = None,
    email_error: str | None = None,
    email_value: str = "",
    status: int = 200,
) -> Response:
    user = ctx.viewer
    target = await _profile_user(ctx, username)
    me = target.id == user.id
    may = await eligibility.for_person(ctx, target.id)
    async with ctx.dbs.app.read() as session:
        pairs = await blocks.blocks_among(session, user.id, [target.id])
    hidden = await privacy.last_seen_hidden(ctx.rt, user, [target.id])
    context = {
        **await nav(request, user),
        "title": target.display_name,
        "section": "profile" if target.id == user.id else None,
        "person": user_dict(
            target, private=target.id == user.id, last_seen=target.id not in hidden
        ),
        "me": target.id == user.id,
        "may": may,
        "i_blocked": (user.id, target.id) in pairs,
        "notice": notice,
        "error": error,
        "values": values or {"display_name": target.display_name, "bio": target.bio or ""},
        "reasons": report_reasons(),
        "report": report,  # a report form sent back with what was wrong
        "password_error": password_error,  # the password form sent back, open
        "email_error": email_error,  # the change-of-email form sent back, open
        "email_value": email_value,
        "pending_email": await account_email.pending_email(ctx.rt, user.id) if me else None,
        "suspension": await suspension_view.for_profile(
            request, ctx.rt, user, target.id, target.username
        ),
        "durations": suspension_view.DURATIONS,
        "my_invitations": await invitation_view.pending_for(ctx) if target.id == user.id else [],
    }
    return render(request, "profile.html", context, status=status)


@router.post("/u/{username}/edit")
async def edit_profile(request: Request, username: Username, ctx: PageCtx, form: Form) -> Response:
    """One's own name and bio: the same service as `PUT /api/v1/users/{id}`."""
    values = {"display_name": field(form, "display_name"), "bio": field(form, "bio")}
    try:
        body = UserUpdate(display_name=values["display_name"], bio=values["bio"])
        target = await _profile_user(ctx, username)
        await accounts.update_user(
            ctx.uow,
            ctx.viewer,
            target.id,
            limiter=ctx.rt.limiter,
            display_name=body.display_name,
            bio=body.bio,
        )
    except ValidationError as exc:
        error = str(exc.errors()[0].get("msg", "Not valid.")).removeprefix("Value error, ")
        return await render_profile(request, ctx, username, error=error, values=values, status=422)
    except AppError as exc:
        if exc.status == 404:
            raise
        await ctx.uow.rollback()
        response = await render_profile(
            request, ctx, username, error=exc.message, values=values, status=exc.status
        )
        if exc.headers:  # Retry-After, when it was a rate limit
            response.headers.update(exc.headers)
        return response
    return RedirectResponse(f"/u/{target.username}?notice=saved", status_code=303)


@router.post("/u/{username}/privacy")
async def edit_privacy(username: Username, ctx: PageCtx, form: Form) -> Response:
    """One's last seen and read receipts: the same service as `PUT /api/v1/users/{id}`."""
    target = await _profile_user(ctx, username)
    await accounts.update_user(
        ctx.uow,
        ctx.viewer,
        target.id,
        limiter=ctx.rt.limiter,
        show_last_seen=field(form, "show_last_seen") == "1",
        read_receipts=field(form, "read_receipts") == "1",
    )
    return RedirectResponse(f"/u/{target.username}?notice=saved#privacy", status_code=303)


@router.post("/u/{username}/message")
async def message(request: Request, username: Username, ctx: PageCtx, form: Form) -> Response:
    target = await _profile_user(ctx, username)
    conv_id, _ = await messaging.start_direct(ctx, target.id)
    return RedirectResponse(f"/messages/{conv_id}", status_code=303)


@router.post("/u/{username}/block")
async def block(request: Request, username: Username, ctx: PageCtx, form: Form) -> Response:
    target = await _profile_user(ctx, username)
    await blocks.add_block(ctx.uow, ctx.viewer, target.id)
    return RedirectResponse(f"/u/{target.username}?notice=blocked", status_code=303)


@router.post("/u/{username}/unblock")
async def unblock(request: Request, username: Username, ctx: PageCtx, form: Form) -> Response:
    target = await _profile_user(ctx, username)
    await blocks.remove_block(ctx.uow, ctx.viewer.id, target.id)
    # from a thread's "You blocked …" banner: back to the thread, which can be written in again
    back = safe_next(field(form, "next") or None, f"/u/{target.username}?notice=unblocked")
    return RedirectResponse(back, status_code=303)


@router.post("/u/{username}/report")
async def report(request: Request, username: Username, ctx: PageCtx, form: Form) -> Response:
    """Report a person to the moderators: the same service as `POST /api/v1/users/{id}/report`."""
    values = {"reason": field(form, "reason"), "details": field(form, "details")}
    try:
        body = ReportIn.model_validate(values)
        target = await _profile_user(ctx, username)
        await reports.report_person(ctx, target.id, reason=body.reason, details=body.details)
    except ValidationError:
        error = "Pick a reason, and keep the details under 1,000 characters."
        return await render_profile(request, ctx, username, error=error, report=values, status=422)
    except AppError as exc:
        if exc.status == 404 or exc.code == "messaging_disabled":
            raise
        await ctx.uow.rollback()
        response = await render_profile(
            request, ctx, username, error=exc.message, report=values, status=exc.status
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    return RedirectResponse(f"/u/{target.username}?notice=reported", status_code=303)
