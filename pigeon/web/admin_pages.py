"""The admin page: the messaging switch, people with their tier and role, the audit log.

Other domains add sections (e.g. a moderation queue) with `register_section(template, loader)`;
the loader returns the template's context and the page includes it in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.accounts.service import Principal
from pigeon.accounts.views import user_dict
from pigeon.admin import api as admin_api
from pigeon.admin import service as admin
from pigeon.admin.schemas import AdminUserUpdate
from pigeon.core.errors import AppError
from pigeon.core.types import INT32_MAX, UserIdPath
from pigeon.web.deps import Form, PageAdmin, field, nav
from pigeon.web.render import render

router = APIRouter()
USERS_PAGE = 50
NOTICES = {
    "messaging_on": "Direct messaging is on. Members can message each other now.",
    "messaging_off": "Direct messaging is off. Nothing was deleted; turn it on to resume.",
    "user_saved": "Saved.",
}
Loader = Callable[[Request, Principal], Awaitable[dict[str, Any]]]
SECTIONS: list[tuple[str, Loader]] = []


def register_section(template: str, loader: Loader) -> None:
    """Add a section to the admin page: `template` is rendered with what `loader` returns."""
    SECTIONS.append((template, loader))


async def render_admin(
    request: Request,
    user: Principal,
    *,
    q: str = "",
    offset: int = 0,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    dbs = request.app.state.dbs
    switch = await admin.setting_row(dbs.app, admin.MESSAGING_ENABLED)
    async with dbs.app.read() as session:
        people = await accounts.list_users(
            session, q=q or None, limit=USERS_PAGE + 1, offset=offset
        )
        audit = await admin.list_audit(session, limit=50)
    sections = [(template, await loader(request, user)) for template, loader in SECTIONS]
    context = {
        **await nav(request, user),
        "title": "Admin",
        "section": "admin",
        "enabled": bool(switch and switch.value),
        "switch": switch,
        "people": [user_dict(u, private=True) for u in people[:USERS_PAGE]],
        "more_people": len(people) > USERS_PAGE,
        "q": q,
        "offset": offset,
        "audit": audit,
        "sections": sections,
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
    q: Annotated[str, Query(max_length=100)] = "",
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
    notice: str | None = None,
) -> Response:
    return await render_admin(request, user, q=q, offset=offset, notice=notice)


@router.post("/admin/messaging/toggle")
async def toggle_messaging(request: Request, user: PageAdmin, form: Form) -> Response:
    enabled = field(form, "enabled") == "on"
    await admin.set_messaging(
        request.app.state.dbs, enabled, actor_id=user.id, actor_label=user.username
    )
    notice = "messaging_on" if enabled else "messaging_off"
    return RedirectResponse(f"/admin?notice={notice}", status_code=303)


@router.post("/admin/users/{user_id}")
async def update_user(
    request: Request, user_id: UserIdPath, user: PageAdmin, form: Form
) -> Response:
    """The same code path as `PATCH /api/v1/admin/users/{id}`."""
    try:
        body = AdminUserUpdate(tier=field(form, "tier") or None, role=field(form, "role") or None)
        await admin_api.update_user(user_id, body, user, request.app.state.dbs)
    except ValidationError:
        return await render_admin(
            request, user, error="Pick a tier and a role from the lists.", status=422
        )
    except AppError as exc:
        if exc.status == 404:
            raise
        return await render_admin(request, user, error=exc.message, status=exc.status)
    return RedirectResponse(f"/admin?notice=user_saved#user-{user_id}", status_code=303)
