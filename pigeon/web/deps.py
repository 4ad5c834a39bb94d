"""What page routes declare: the signed-in person (from the cookie), a CSRF-checked form, the
messaging context, and the navigation every page shows."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from starlette.datastructures import FormData

from pigeon.core.deps import SESSION_COOKIE, Rt, Uow
from pigeon.core.errors import AppError, NotAllowed
from pigeon.core.principal import Principal
from pigeon.core.uow import UnitOfWork
from pigeon.messaging import policy
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.web.session import CSRF_FIELD, check_csrf


async def page_user(request: Request, rt: Rt) -> Principal:
    """The signed-in person; a 401 here becomes a redirect to the sign-in page."""
    principal = await rt.authenticate(None, request.cookies.get(SESSION_COOKIE))
    request.state.viewer = principal
    return principal


async def optional_user(request: Request, rt: Rt) -> Principal | None:
    if not request.cookies.get(SESSION_COOKIE):
        return None
    try:
        return await page_user(request, rt)
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


async def page_ctx(request: Request, rt: Rt, user: PageUser, uow: Uow) -> Ctx:
    """The messaging context of a page request: the signed-in person, the request's unit of
    work (committed when the page is returned, before it is sent)."""
    return Ctx(rt=rt, sends=request.app.state.sends, viewer=user, uow=uow)


PageCtx = Annotated[Ctx, Depends(page_ctx, scope="function")]


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value if isinstance(value, str) else default


def int_field(form: FormData, name: str) -> int | None:
    value = field(form, name).strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None


def from_this_site(request: Request) -> bool:
    """Whether a page request was made from Pigeon's own pages (or typed in by the person):
    `Sec-Fetch-Site` same-origin or none, or, from a browser that does not send it, a
    `Referer` of this origin. A link on another site, or no evidence at all, is not."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    referer = urlsplit(request.headers.get("referer", ""))
    here = request.url
    return (referer.scheme, referer.netloc) == (here.scheme, here.netloc)


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(target, safe="")


def safe_next(value: str | None, default: str = "/messages") -> str:
    """Only same-site paths: never `//host` or a scheme."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


async def nav(
    request: Request, user: Principal | None, uow: UnitOfWork | None = None
) -> dict[str, Any]:
    """The context every page's navigation needs: who, whether messaging is on, unread total
    and waiting message requests (as the request's own unit of work left them, when it has
    one)."""
    rt = request.app.state.runtime
    mode = await rt.switches.messaging_mode()
    enabled = mode != "off"
    unread = requests = 0
    if user is not None and enabled and not user.is_suspended(rt.clock.now()):
        reader = uow.read(rt.dbs.messaging) if uow is not None else rt.dbs.messaging.read()
        async with reader as session:
            found = await messaging.unread_for(session, user.id)
            unread, requests = found.total, found.requests
    return {
        "viewer": user,
        "messaging_enabled": enabled,
        "messaging_mode": mode,  # on, read_only or off
        "unread_total": unread,
        "requests_count": requests,  # message requests waiting: the list's "Requests (N)"
        "can_start": user is not None and policy.can_start(user),
    }
