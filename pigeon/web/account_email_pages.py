"""The account's email as pages, without script: follow a verification or confirmation link
(a button, so that mail scanners fetching links spend nothing), ask for a reset link, choose a
new password, change the address from the profile. The same services as the API
(`auth.account_email`); every form posts, redirects, and shows its errors in place.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.auth import account_email
from pigeon.auth.account_tokens import LinkInvalid
from pigeon.auth.schemas import EmailChangeIn, ForgotIn, LinkTokenIn, ResetIn
from pigeon.core.deps import Rt, Uow
from pigeon.core.errors import AppError
from pigeon.core.principal import Principal
from pigeon.web.account_pages import _address, _mine, _retry_after
from pigeon.web.deps import Form, MaybeUser, PageCtx, PageUser, field, nav
from pigeon.web.people_pages import Username, render_profile
from pigeon.web.render import render
from pigeon.web.session import clear_session

router = APIRouter()
Token = Annotated[str, Query(max_length=200)]

# the page each kind of link opens, and its title
LINKS = {
    "verify": ("/verify-email", "Verify your email address"),
    "confirm": ("/confirm-email", "Confirm your new email address"),
}


async def _page(
    request: Request,
    name: str,
    title: str,
    user: Principal | None = None,
    *,
    status: int = 200,
    error: AppError | None = None,
    **values: Any,
) -> Response:
    context = {**await nav(request, user), "title": title, "error": error and error.message}
    response = render(request, name, {**context, **values}, status=status)
    return _retry_after(response, error) if error else response


def _valid_token(token: str) -> str:
    """The token if it could be one; LinkInvalid (the page for a dead link) otherwise."""
    try:
        return LinkTokenIn(token=token).token
    except ValidationError:
        raise LinkInvalid() from None


# --- following a link: verify the address, confirm a new one ---


async def _link_page(request: Request, user: Principal | None, which: str, token: str) -> Response:
    """The link's page: one button that spends it (a link cut short in the mail goes straight
    to the page saying it no longer works)."""
    try:
        token = _valid_token(token)
    except LinkInvalid as exc:
        return await _dead_link(request, user, which, exc)
    path, title = LINKS[which]
    return await _page(
        request, "account/link.html", title, user, which=which, action=path, token=token
    )


async def _dead_link(
    request: Request, user: Principal | None, which: str, exc: AppError
) -> Response:
    title = "This link no longer works"
    return await _page(
        request, "account/dead_link.html", title, user, status=exc.status, error=exc, which=which
    )


@router.get("/verify-email")
async def verify_page(request: Request, user: MaybeUser, token: Token = "") -> Response:
    return await _link_page(request, user, "verify", token)


@router.post("/verify-email")
async def verify(request: Request, form: Form, user: MaybeUser, uow: Uow) -> Response:
    try:
        await account_email.verify_email(uow, _valid_token(field(form, "token")))
    except AppError as exc:
        await uow.rollback()
        return await _dead_link(request, user, "verify", exc)
    return RedirectResponse("/verify-email/done", status_code=303)


@router.get("/verify-email/done")
async def verified(request: Request, user: MaybeUser) -> Response:
    return await _page(request, "account/done.html", "Email verified", user, which="verified")


@router.post("/verify-email/resend")
async def resend(request: Request, ctx: PageCtx, form: Form) -> Response:
    try:
        await account_email.resend_verification(ctx.rt, ctx.uow, ctx.viewer)
    except AppError as exc:
        await ctx.uow.rollback()
        if exc.code == "already_verified":
            return RedirectResponse("/verify-email/done", status_code=303)
        return await _page(
            request, "account/done.html", "Verify your email address", ctx.viewer,
            status=exc.status, error=exc, which="resend",
        )  # fmt: skip
    return RedirectResponse("/verify-email/sent", status_code=303)


@router.get("/verify-email/sent")
async def resent(request: Request, user: PageUser) -> Response:
    return await _page(request, "account/done.html", "Check your inbox", user, which="resent")


@router.get("/confirm-email")
async def confirm_page(request: Request, user: MaybeUser, token: Token = "") -> Response:
    return await _link_page(request, user, "confirm", token)


@router.post("/confirm-email")
async def confirm(request: Request, form: Form, user: MaybeUser, rt: Rt, uow: Uow) -> Response:
    try:
        await account_email.confirm_email_change(rt, uow, _valid_token(field(form, "token")))
    except AppError as exc:
        await uow.rollback()
        return await _dead_link(request, user, "confirm", exc)
    return RedirectResponse("/confirm-email/done", status_code=303)


@router.get("/confirm-email/done")
async def confirmed(request: Request, user: MaybeUser) -> Response:
    return await _page(request, "account/done.html", "Email address changed", user, which="changed")


# --- a forgotten password ---


@router.get("/password/forgot")
async def forgot_page(request: Request, user: MaybeUser) -> Response:
    return await _page(request, "account/forgot.html", "Forgot your password?", user, email="")


@router.post("/password/forgot")
async def forgot(request: Request, form: Form, user: MaybeUser, rt: Rt, uow: Uow) -> Response:
    email = field(form, "email").strip()
    try:
        body = ForgotIn(email=email)
        await account_email.forgot_password(
            rt, uow, email=str(body.email), address=_address(request)
        )
    except ValidationError:
        return await _page(
            request, "account/forgot.html", "Forgot your password?", user, status=422,
            email=email, problem="Enter the email address of your account.",
        )  # fmt: skip
    except AppError as exc:
        await uow.rollback()
        return await _page(
            request, "account/forgot.html", "Forgot your password?", user,
            status=exc.status, error=exc, email=email,
        )  # fmt: skip
    return RedirectResponse("/password/forgot/sent", status_code=303)


@router.get("/password/forgot/sent")
async def forgot_sent(request: Request, user: MaybeUser) -> Response:
    return await _page(request, "account/done.html", "Check your inbox", user, which="forgot")


@router.get("/password/reset")
async def reset_page(request: Request, user: MaybeUser, rt: Rt, token: Token = "") -> Response:
    try:
        await account_email.check_reset_link(rt, _valid_token(token))
    except AppError as exc:
        return await _dead_link(request, user, "reset", exc)
    return await _page(request, "account/reset.html", "Choose a new password", user, token=token)


@router.post("/password/reset")
async def reset(request: Request, form: Form, user: MaybeUser, rt: Rt, uow: Uow) -> Response:
    token = field(form, "token")
    title = "Choose a new password"
    if field(form, "password") != field(form, "password_again"):
        problem = "The two passwords are not the same."
        return await _page(
            request, "account/reset.html", title, user, status=422, token=token, problem=problem
        )
    try:
        body = ResetIn(token=_valid_token(token), password=field(form, "password"))
        await account_email.reset_password(rt, uow, token=body.token, password=body.password)
    except ValidationError:
        problem = "Enter a new password (at most 256 characters)."
        return await _page(
            request, "account/reset.html", title, user, status=422, token=token, problem=problem
        )
    except LinkInvalid as exc:
        await uow.rollback()
        return await _dead_link(request, user, "reset", exc)
    except AppError as exc:
        await uow.rollback()
        problem = (exc.fields or {}).get("password") or exc.message
        return await _page(
            request, "account/reset.html", title, user, status=exc.status, token=token,
            problem=problem,
        )  # fmt: skip
    response = RedirectResponse("/login?reset=1", status_code=303)
    clear_session(response, request)  # every sign-in ended, this browser's too
    return response


# --- changing the address, from one's profile ---


@router.post("/u/{username}/email")
async def change_email(request: Request, username: Username, ctx: PageCtx, form: Form) -> Response:
    _mine(ctx, username)
    email = field(form, "email").strip()
    try:
        body = EmailChangeIn(email=email, password=field(form, "password"))
        await account_email.request_email_change(
            ctx.rt,
            ctx.uow,
            ctx.viewer,
            password=body.password,
            email=str(body.email),
            address=_address(request),
        )
    except ValidationError:
        error = "Enter the new email address and your current password."
        return await render_profile(
            request, ctx, username, email_error=error, email_value=email, status=422
        )
    except AppError as exc:
        await ctx.uow.rollback()
        response = await render_profile(
            request, ctx, username, email_error=exc.message, email_value=email, status=exc.status
        )
        return _retry_after(response, exc)
    return RedirectResponse(f"/u/{ctx.viewer.username}?notice=email#email", status_code=303)
