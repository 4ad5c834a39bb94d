"""What page routes declare: the signed-in person (from the cookie), a CSRF-checked form, the
messaging context, and the navigation every page shows."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.datastructures import FormData

from pigeon.accounts.service import Principal
from pigeon.admin import service as admin
from pigeon.core.deps import SESSION_COOKIE, AppSettings, Dbs, principal_from_token
from pigeon.core.errors import AppError, NotAllowed
from pigeon.messaging import policy
from pigeon.messaging import service as messaging
from pigeon.web.session import CSRF_FIELD, check_csrf


async def page_user(request: Request, dbs: Dbs, settings: AppSettings) -> Principal:
    """The signed-in person; a 401 here becomes a redirect to the sign-in page."""
    cookie = request.cookies.get(SESSION_COOKIE)
    principal = await principal_from_token(dbs, settings, None, cookie=cookie)
    request.state.viewer = principal
    return principal


async def optional_user(request: Request, dbs: Dbs, settings: AppSettings) -> Principal | None:
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return await page_user(request, dbs, settings)
    except AppError:
        return None


async def page_admin(user: Annotated[Principal, Depends(page_user)]) -> Principal:
    if not user.is_admin:
        raise NotAllowed("Only admins can open the admin page.", code="admin_only")
    return user


async def csrf_form(request: Request) -> FormData:
    """The submitted form, after its CSRF token is checked."""
    form = await request.form()
    value = form.get(CSRF_FIELD)
    check_csrf(request, value if isinstance(value, str) else None)
    return form


PageUser = Annotated[Principal, Depends(page_user)]
MaybeUser = Annotated[Principal | None, Depends(optional_user)]
PageAdmin = Annotated[Principal, Depends(page_admin)]
Form = Annotated[FormData, Depends(csrf_form)]


def ctx_of(request: Request, user: Principal) -> messaging.Ctx:
    return messaging.Ctx(
        dbs=request.app.state.dbs, settings=request.app.state.settings, viewer=user
    )


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def int_field(form: FormData, name: str) -> int | None:
    value = field(form, name).strip()
    return int(value) if value.isdigit() and len(value) < 12 else None


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


def safe_next(value: str | None, default: str = "/messages") -> str:
    """Only same-site paths: never `//host` or a scheme."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


async def nav(request: Request, user: Principal | None) -> dict[str, Any]:
    """The context every page's navigation needs: who, whether messaging is on, unread total."""
    dbs = request.app.state.dbs
    enabled = await admin.messaging_enabled(dbs.app)
    unread = 0
    if user is not None and enabled and not user.is_suspended():
        async with dbs.messaging.read() as session:
            unread = (await messaging.unread_for(session, user.id))["total"]
    return {
        "viewer": user,
        "messaging_enabled": enabled,
        "unread_total": unread,
        "can_start": user is not None and policy.can_start(user),
    }
