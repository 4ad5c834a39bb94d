"""Invitations in the pages, without script: an invitation's link (join, or register), one's
own pending invitations (accept or decline), and the staff page to send, list and revoke. The
same service as `/api/v1/invitations`."""

from __future__ import annotations

from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import communities, invitation_lists, invitations
from pigeon.accounts import service as accounts
from pigeon.accounts.invitation_schemas import TOKEN, InvitationSendIn, invitation_dict
from pigeon.accounts.models import TIERS
from pigeon.core.deps import Rt
from pigeon.core.errors import AppError, NotAllowed
from pigeon.core.types import UserIdPath
from pigeon.messaging.context import Ctx
from pigeon.web.deps import Form, MaybeUser, PageCtx, field, int_field, nav
from pigeon.web.render import render

router = APIRouter()
Token = Annotated[str, Path(min_length=1, max_length=200, pattern=TOKEN)]
STATES: tuple[invitations.State, ...] = get_args(invitations.State)
NOTICES = {"revoked": "Invitation revoked: its link no longer works."}


@router.get("/invitations/{token}")
async def invitation_page(request: Request, token: Token, user: MaybeUser, rt: Rt) -> Response:
    """The link in an invitation email. Signed out: register with it, or sign in first when
    the address has an account. Signed in: join the community, or decline."""
    context: dict[str, Any] = {**await nav(request, user), "title": "Invitation"}
    try:
        async with rt.dbs.app.read() as session:
            found = await invitations.verify(session, token, rt.clock.now())
            email = (await accounts.get_user(session, user.id)).email if user else None
    except AppError as exc:
        context["error"] = exc.message
        return render(request, "invitation.html", context, status=exc.status)
    if user is None:
        here = quote(f"/invitations/{token}", safe="")
        target = (
            f"/login?next={here}" if found.existing_account else f"/register?invitation={token}"
        )
        return RedirectResponse(target, status_code=303)
    context["invitation"] = {
        "id": found.invitation.id,
        "email": found.invitation.email,
        "community": found.community.name,
        "tier": found.invitation.tier,
        "mine": email is not None and accounts.normalize_email(email) == found.invitation.email,
    }
    return render(request, "invitation.html", context, status=200)


async def _answer(request: Request, ctx: PageCtx, form: Form, *, yes: bool) -> Response:
    invitation_id = int_field(form, "invitation_id")
    try:
        do = invitations.accept if yes else invitations.decline
        await do(ctx.uow, ctx.viewer, invitation_id=invitation_id or -1)
    except AppError as exc:
        await ctx.uow.rollback()
        context = {**await nav(request, ctx.viewer), "title": "Invitation", "error": exc.message}
        return render(request, "invitation.html", context, status=exc.status)
    notice = "joined" if yes else "declined"
    return RedirectResponse(
        f"/u/{ctx.viewer.username}?notice={notice}#invitations", status_code=303
    )


@router.post("/me/invitations/accept")
async def accept(request: Request, ctx: PageCtx, form: Form) -> Response:
    return await _answer(request, ctx, form, yes=True)


@router.post("/me/invitations/decline")
async def decline(request: Request, ctx: PageCtx, form: Form) -> Response:
    return await _answer(request, ctx, form, yes=False)


async def render_manage(
    request: Request,
    ctx: Ctx,
    *,
    state: str | None = None,
    values: dict[str, str] | None = None,
    sent: dict[str, Any] | None = None,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    user, now = ctx.viewer, ctx.rt.clock.now()
    if not user.is_staff:
        raise NotAllowed("Only admins and managers send invitations.", code="staff_only")
    chosen = next((s for s in STATES if s == state), None)
    async with ctx.uow.read(ctx.dbs.app) as session:
        rows = await invitation_lists.list_sent(session, user, now, state=chosen, limit=200)
        names = await invitation_lists.community_names(session, rows)
        mine = await communities.list_communities(session, user)
    context = {
        **await nav(request, user, ctx.uow),
        "title": "Invitations",
        "section": "invitations",
        "invitations": [invitation_dict(r, names.get(r.community_id), now) for r in rows],
        "communities": [c for c in mine if user.is_admin or c.id in user.community_ids],
        "tiers": TIERS if user.is_admin else ("free",),
        "states": STATES,
        "state": chosen,
        "values": values or {},
        "sent": sent,
        "notice": NOTICES.get(notice or ""),
        "error": error,
    }
    return render(request, "invitations.html", context, status=status)


@router.get("/invitations")
async def manage_page(
    request: Request,
    ctx: PageCtx,
    state: Annotated[str | None, Query(max_length=20)] = None,
    notice: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    return await render_manage(request, ctx, state=state, notice=notice)


@router.post("/invitations")
async def send(request: Request, ctx: PageCtx, form: Form) -> Response:
    """Answered with the page itself, not a redirect: the link is shown this once, and an
    address bar or a log must never hold it."""
    values = {k: field(form, k).strip() for k in ("email", "community_id", "tier")}
    try:
        body = InvitationSendIn.model_validate(
            {
                "email": values["email"],
                "community_id": int_field(form, "community_id"),
                "tier": values["tier"] or None,
            }
        )
        result = await invitations.send(
            ctx.rt,
            ctx.uow,
            ctx.viewer,
            email=str(body.email),
            community_id=body.community_id,
            tier=body.tier,
        )
    except ValidationError:
        error = "Enter an email address, and pick a community and a tier from the lists."
        return await render_manage(request, ctx, values=values, error=error, status=422)
    except AppError as exc:
        await ctx.uow.rollback()
        return await render_manage(
            request, ctx, values=values, error=exc.message, status=exc.status
        )
    sent = {
        "email": result.invitation.email,
        "community": result.community.name,
        "link": result.link,
    }
    return await render_manage(request, ctx, sent=sent)


@router.post("/invitations/{invitation_id}/revoke")
async def revoke(request: Request, invitation_id: UserIdPath, ctx: PageCtx, form: Form) -> Response:
    try:
        await invitations.revoke(ctx.uow, ctx.viewer, invitation_id)
    except AppError as exc:
        if exc.status == 404:
            raise
        await ctx.uow.rollback()
        return await render_manage(request, ctx, error=exc.message, status=exc.status)
    return RedirectResponse("/invitations?notice=revoked", status_code=303)
