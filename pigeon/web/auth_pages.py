"""Sign in, register, sign out: the same services as `/api/v1/auth`, with a cookie session."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.accounts import invitations
from pigeon.auth import service as auth
from pigeon.auth.schemas import LoginIn, RegisterIn
from pigeon.core.deps import SESSION_COOKIE, AppSettings, Rt, Uow
from pigeon.core.errors import AppError
from pigeon.core.runtime import Runtime
from pigeon.web.deps import Form, MaybeUser, field, nav, safe_next
from pigeon.web.render import render
from pigeon.web.session import clear_session, end_session, session_token, set_session

router = APIRouter()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = ".".join(str(p) for p in err.get("loc", ())) or "value"
    msg = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
    labels = {
        "username": "Username",
        "email": "Email",
        "password": "Password",
        "display_name": "Display name",
        "login": "Username or email",
        "invitation_token": "Invitation",
    }
    return f"{labels.get(name, name)}: {msg}"


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _signed_in(request: Request, settings: Any, pair: auth.TokenPair, target: str) -> Response:
    response = RedirectResponse(target, status_code=303)
    token = session_token(request.app.state.runtime, pair.user.id, pair.family_id)
    set_session(response, request, settings, token)
    return response


@router.get("/")
async def home(user: MaybeUser, rt: Rt) -> Response:
    """Messages, or one's profile while messaging is off (Messages would only say it is off)."""
    if user is None:
        return RedirectResponse("/login", status_code=303)
    enabled = await rt.switches.messaging_enabled()
    return RedirectResponse("/messages" if enabled else f"/u/{user.username}", status_code=303)


@router.get("/login")
async def login_page(request: Request, user: MaybeUser, next: str | None = None) -> Response:
    if user is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(
        request,
        "login.html",
        {**await nav(request, None), "title": "Sign in", "next": safe_next(next), "values": {}},
    )


@router.post("/login")
async def login(request: Request, form: Form, rt: Rt, uow: Uow) -> Response:
    settings = rt.settings
    values = {"login": field(form, "login").strip()}
    target = safe_next(field(form, "next"))
    status, headers = 400, None
    try:
        body = LoginIn(login=values["login"], password=field(form, "password"))
        pair = await auth.login(
            rt,
            uow,
            login=body.login,
            password=body.password,
            address=_address(request),
        )
    except ValidationError:
        error = "Enter your username or email and your password."
    except AppError as exc:
        await uow.rollback()
        error, headers = exc.message, exc.headers
        status = 429 if exc.status == 429 else 400
    else:
        return _signed_in(request, settings, pair, target)
    context = {
        **await nav(request, None),
        "title": "Sign in",
        "next": target,
        "values": values,
        "error": error,
    }
    response = render(request, "login.html", context, status=status)
    response.headers.update(headers or {})
    return response


async def _invitation(rt: Runtime, token: str) -> tuple[dict[str, str] | None, str | None]:
    """The invitation a register page offers ({token, email, community}), or why not."""
    if not token:
        return None, None
    try:
        async with rt.dbs.app.read() as session:
            found = await invitations.verify(session, token, rt.clock.now())
    except AppError as exc:
        return None, exc.message
    offer = {"token": token, "email": found.invitation.email, "community": found.community.name}
    return offer, None


async def _register_context(
    request: Request, rt: Runtime, token: str, values: dict[str, str]
) -> dict[str, Any]:
    offer, problem = await _invitation(rt, token[:200])
    if offer is not None:
        values = {**values, "email": offer["email"]}
    return {
        **await nav(request, None),
        "title": "Create an account",
        "values": values,
        "invitation": offer,
        "invitation_error": problem,
        "closed": offer is None and rt.settings.registration != "open",
    }


@router.get("/register")
async def register_page(
    request: Request,
    user: MaybeUser,
    rt: Rt,
    invitation: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """With `?invitation=TOKEN` (the link in an invitation email): the community's name and
    the invited email, fixed. Signed in already, the link asks to join instead."""
    if user is not None:
        target = f"/invitations/{quote(invitation, safe='')}" if invitation else "/messages"
        return RedirectResponse(target, status_code=303)
    context = await _register_context(request, rt, invitation, {})
    return render(request, "register.html", context, status=200)


@router.post("/register")
async def register(request: Request, form: Form, rt: Rt, uow: Uow) -> Response:
    settings = rt.settings
    values = {k: field(form, k).strip() for k in ("email", "username", "display_name")}
    token = field(form, "invitation_token").strip()
    context = await _register_context(request, rt, token, values)
    if not token and settings.registration != "open":
        context["error"] = "Registration is by invitation only; ask for an invitation."
        return render(request, "register.html", context, status=403)
    status, headers = 400, None
    try:
        body = RegisterIn(
            email=values["email"],
            username=values["username"],
            password=field(form, "password"),
            display_name=values["display_name"] or None,
            invitation_token=token or None,
        )
        pair = await auth.register(
            rt,
            uow,
            email=str(body.email),
            username=body.username,
            password=body.password,
            display_name=body.display_name,
            address=_address(request),
            invitation_token=body.invitation_token,
        )
    except ValidationError as exc:
        context["error"] = _first_error(exc)
    except AppError as exc:
        await uow.rollback()
        context["error"], headers = exc.message, exc.headers
        status = exc.status if exc.status in (403, 404, 429) else 400
    else:
        return _signed_in(request, settings, pair, "/messages")
    response = render(request, "register.html", context, status=status)
    response.headers.update(headers or {})
    return response


@router.get("/logout")
async def logout_page(request: Request, user: MaybeUser) -> Response:
    """Signing out changes state, so it is a form (a link could be followed by anyone)."""
    if user is None:
        return RedirectResponse("/login", status_code=303)
    return render(request, "logout.html", {**await nav(request, user), "title": "Sign out"})


@router.post("/logout")
async def logout(request: Request, form: Form, settings: AppSettings, uow: Uow) -> Response:
    await end_session(uow, settings, request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login?signed_out=1", status_code=303)
    clear_session(response, request)
    return response
