"""The account's email over the API: verify it, reset a forgotten password, change it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pigeon.accounts.schemas import UserOut
from pigeon.auth import account_email
from pigeon.auth import api as auth_api
from pigeon.auth.schemas import (
    AcceptedOut,
    AccountEmailOut,
    EmailChangeIn,
    EmailChangeOut,
    ForgotIn,
    LinkTokenIn,
    ResetIn,
    VerificationSentOut,
)
from pigeon.core.deps import CurrentUser, Rt, Uow

router = APIRouter(tags=["auth"])

Responses = dict[int | str, dict[str, Any]]
LINK: Responses = {400: {"description": "`invalid_link`: unknown, used, replaced or expired"}}
LIMITED: Responses = {429: {"description": "`rate_limited`, with `Retry-After`"}}
SIGNED_IN: Responses = {401: {"description": "not signed in"}}


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


# the same endpoint as GET /auth/me, where clients of `/me/email` and `DELETE /me` look for it
router.add_api_route(
    "/me", auth_api.me, methods=["GET"], response_model=UserOut, summary="Who I am", tags=["users"]
)


@router.post(
    "/auth/email/verify",
    response_model=AccountEmailOut,
    summary="Verify the email address with the emailed link",
    responses=LINK,
)
async def verify_email(body: LinkTokenIn, uow: Uow) -> dict[str, Any]:
    """No sign-in needed: the link may be opened on another device. Single use."""
    user = await account_email.verify_email(uow, body.token)
    return {"email": user.email, "email_verified": True}


@router.post(
    "/auth/email/verify/resend",
    status_code=202,
    response_model=VerificationSentOut,
    summary="Send the verification email again",
    responses={**SIGNED_IN, 409: {"description": "`already_verified`"}, **LIMITED},
)
async def resend_verification(user: CurrentUser, rt: Rt, uow: Uow) -> dict[str, Any]:
    """A new link to my address; the ones sent before stop working."""
    return {"sent_to": await account_email.resend_verification(rt, uow, user)}


@router.post(
    "/auth/password/forgot",
    status_code=202,
    response_model=AcceptedOut,
    summary="Email a link to choose a new password",
    responses={422: {"description": "not an email address"}, **LIMITED},
)
async def forgot_password(body: ForgotIn, request: Request, rt: Rt, uow: Uow) -> dict[str, Any]:
    """The same answer, after the same work, whether or not an account uses the address: the
    address itself is told which (a link, or a note that no account uses it)."""
    await account_email.forgot_password(rt, uow, email=str(body.email), address=_address(request))
    return {"message": account_email.FORGOT_ANSWER}


@router.post(
    "/auth/password/reset",
    status_code=204,
    summary="Choose a new password with the emailed link",
    responses={**LINK, 422: {"description": "the password breaks a rule (`fields.password`)"}},
)
async def reset_password(body: ResetIn, rt: Rt, uow: Uow) -> Response:
    """Every sign-in of the account ends; the address counts as verified and is told."""
    await account_email.reset_password(rt, uow, token=body.token, password=body.password)
    return Response(status_code=204)


@router.post(
    "/me/email",
    status_code=202,
    response_model=EmailChangeOut,
    summary="Change my email address (after confirming the new one)",
    responses={
        **SIGNED_IN,
        403: {"description": "`wrong_password` (counts against the sign-in limits)"},
        422: {"description": "not an email address, or `same_email`"},
        **LIMITED,
    },
)
async def change_email(
    body: EmailChangeIn, request: Request, user: CurrentUser, rt: Rt, uow: Uow
) -> dict[str, Any]:
    """Nothing changes until the link sent to the new address is followed. The answer is the
    same whether or not another account uses that address (the address itself is told)."""
    pending = await account_email.request_email_change(
        rt,
        uow,
        user,
        password=body.password,
        email=str(body.email),
        address=_address(request),
    )
    return {
        "message": f"We sent a link to {pending}; your address changes when it is followed.",
        "pending_email": pending,
    }


@router.post(
    "/auth/email/confirm",
    response_model=AccountEmailOut,
    summary="Confirm a new email address with the emailed link",
    responses={**LINK, 409: {"description": "`email_taken`: another account has it by now"}},
)
async def confirm_email(body: LinkTokenIn, rt: Rt, uow: Uow) -> dict[str, Any]:
    """No sign-in needed. The old address is told; links sent to it stop working."""
    user = await account_email.confirm_email_change(rt, uow, body.token)
    return {"email": user.email, "email_verified": True}
