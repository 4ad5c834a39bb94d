"""The admin page: the messaging switch, people with their tier and role, the moderation
queue, the audit log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.accounts.views import user_dict
from pigeon.admin import moderation
from pigeon.admin import service as admin
from pigeon.admin.schemas import AdminUserUpdate
from pigeon.core.audit import list_audit
from pigeon.core.deps import Rt, Uow
from pigeon.core.errors import AppError
from pigeon.core.principal import Principal
from pigeon.core.switches import MESSAGING_ENABLED, mode_of
from pigeon.core.types import INT32_MAX, UserIdPath
from pigeon.core.uow import UnitOfWork
from pigeon.email import outbox
from pigeon.web import audit_view, suspension_view
from pigeon.web.deps import Form, PageAdmin, field, nav
from pigeon.web.render import render

router = APIRouter()
USERS_PAGE = 50
NOTICES = {
    "messaging_on": "Direct messaging is on. Members can message each other now.",
    "messaging_off": "Direct messaging is off. Nothing was deleted; turn it on to resume.",
    "messaging_read_only": "Messaging is read-only: members can read, search and export; "
    "nothing new can be sent until it is on again.",
    "user_saved": "Saved.",
    "resolved": "Report resolved.",
    "suspended": "Suspended. They are signed out everywhere and cannot sign in until it ends.",
    "lifted": "Suspension lifted. They can sign in again now.",
    "user_deleted": "Account deleted. They are signed out everywhere; the audit log keeps who.",
    "email_retried": "The email is due again; it goes out with the next delivery.",
}
DEAD_SHOWN = 10
QUEUE_SIZE = 20


async def render_admin(
    request: Request,
    user: Principal,
    uow: UnitOfWork,
    *,
    q: str = "",
    offset: int = 0,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    rt = request.app.state.runtime
    switch = await rt.switches.row(MESSAGING_ENABLED, uow)
    async with uow.read(rt.dbs.app) as session:
        people = await accounts.list_users(
            session, q=q or None, limit=USERS_PAGE + 1, offset=offset
        )
        audit = await audit_view.sentences(
            request, session, user, await list_audit(session, limit=50)
        )
        email = {
            "counts": await outbox.waiting(session),
            "dead": await outbox.list_outbox(session, state="dead", limit=DEAD_SHOWN),
        }
    reports = await moderation.list_reports(uow, user, status="open", limit=QUEUE_SIZE)
    shown = people[:USERS_PAGE]
    suspensions = await suspension_view.for_people(
        request, rt, user, [u.id for u in shown], back="/admin"
    )
    queue = {
        "reports": [r.view() for r in reports],
        "back": "/admin",
        "full": len(reports) == QUEUE_SIZE,
    }
    context = {
        **await nav(request, user),
        "title": "Admin",
        "section": "admin",
        "enabled": bool(switch and switch.value),
        "mode": mode_of(switch.value if switch else False),
        "switch": switch,
        "people": [user_dict(u, private=True) for u in shown],
        "suspensions": suspensions,
        "durations": suspension_view.DURATIONS,
        "more_people": len(people) > USERS_PAGE,
        "q": q,
        "offset": offset,
        "audit": audit,
        "email": email,
        "queue": queue,
        "notice": NOTICES.get(notice or ""),
        "error": error,
        "tiers": ("free", "privileged", "privileged_plus"),
        "roles": ("member", "manager", "owner", "admin"),
    }
    return render(request, "admin.html", context, status=status)


@router.get("/admin")
async def admin_page(
    request: Request,
    user: PageAdmin,
    uow: Uow,
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    notice: str | None = None,
) -> Response:
    return await render_admin(request, user, uow, q=q, offset=offset, notice=notice)


@router.get("/admin/messaging/confirm")
async def confirm_messaging(
    request: Request,
    user: PageAdmin,
    turn: Annotated[str, Query(pattern="^(on|off|read_only)$")] = "off",
) -> Response:
    """The switch changes things for everyone: without script, its form lands here first."""
    context = {**await nav(request, user), "title": "Confirm", "section": "admin", "turn": turn}
    return render(request, "admin/switch_confirm.html", context)


@router.post("/admin/messaging/toggle")
async def toggle_messaging(user: PageAdmin, rt: Rt, uow: Uow, form: Form) -> Response:
    """Sets the switch once confirmed (the confirm page's form, or the script's dialog); an
    unconfirmed post goes to the confirm page and changes nothing. `enabled` (on/off) is the
    older form of `mode` (on/off/read_only)."""
    mode = field(form, "mode") or field(form, "enabled")
    if mode not in ("on", "off", "read_only"):
        return RedirectResponse("/admin", status_code=303)
    if field(form, "confirm") != "yes":
        return RedirectResponse(f"/admin/messaging/confirm?turn={mode}", status_code=303)
    await admin.set_messaging_mode(rt, uow, mode, actor_id=user.id, actor_label=user.username)
    notice = {"on": "messaging_on", "off": "messaging_off"}.get(mode, "messaging_read_only")
    return RedirectResponse(f"/admin?notice={notice}", status_code=303)


@router.post("/admin/users/{user_id}")
async def update_user(
    request: Request, user_id: UserIdPath, user: PageAdmin, uow: Uow, rt: Rt, form: Form
) -> Response:
    """The same service as `PATCH /api/v1/admin/users/{id}`."""
    try:
        body = AdminUserUpdate.model_validate(
            {"tier": field(form, "tier") or None, "role": field(form, "role") or None}
        )
        await admin.update_user(
            uow, user, user_id, limiter=rt.limiter, tier=body.tier, role=body.role
        )
    except ValidationError:
        return await render_admin(
            request, user, uow, error="Pick a tier and a role from the lists.", status=422
        )
    except AppError as exc:
        if exc.status == 404:
            raise
        await uow.rollback()
        return await render_admin(request, user, uow, error=exc.message, status=exc.status)
    return RedirectResponse(f"/admin?notice=user_saved#user-{user_id}", status_code=303)
