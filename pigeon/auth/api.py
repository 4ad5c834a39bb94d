from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pigeon.accounts import communities
from pigeon.accounts import service as accounts
from pigeon.accounts.schemas import UserOut
from pigeon.accounts.views import user_dict
from pigeon.auth import account_email
from pigeon.auth import service as auth
from pigeon.auth.principals import signin_of
from pigeon.auth.schemas import LoginIn, PasswordChangeIn, RefreshIn, RegisterIn, TokenOut
from pigeon.core.deps import SESSION_COOKIE, Bearer, CurrentUser, Rt, Uow

router = APIRouter(prefix="/auth", tags=["auth"])


def token_body(pair: auth.TokenPair) -> dict[str, Any]:
    return {
        "user": user_dict(pair.user, private=True),
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
    }


@router.post(
    "/register",
    status_code=201,
    response_model=TokenOut,
    summary="Create an account and sign in",
    responses={
        403: {
            "description": "`registration_closed`: by invitation only and no `invitation_token`;"
            " `not_your_invitation`: the email is not the invited one"
        },
        404: {"description": "`invalid_invitation`: unknown, expired, used or revoked"},
        409: {"description": "`email_taken` or `username_taken`"},
    },
)
async def register(body: RegisterIn, request: Request, rt: Rt, uow: Uow) -> dict[str, Any]:
    """With `PIGEON_REGISTRATION=invite` only with an invitation's token; with a token the
    account joins the invitation's community and tier."""
    pair = await auth.register(
        rt,
        uow,
        email=str(body.email),
        username=body.username,
        password=body.password,
        display_name=body.display_name,
        address=request.client and request.client.host,
        invitation_token=body.invitation_token,
    )
    return token_body(pair)


@router.post("/login", response_model=TokenOut)
async def login(body: LoginIn, request: Request, rt: Rt, uow: Uow) -> dict[str, Any]:
    pair = await auth.login(
        rt,
        uow,
        login=body.login,
        password=body.password,
        address=request.client and request.client.host,
    )
    return token_body(pair)


@router.post("/refresh", response_model=TokenOut)
async def refresh(body: RefreshIn, rt: Rt, uow: Uow) -> dict[str, Any]:
    return token_body(await auth.refresh(rt, uow, body.refresh_token))


@router.post("/logout", status_code=204)
async def logout(body: RefreshIn, uow: Uow) -> Response:
    await auth.logout(uow, body.refresh_token)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser, rt: Rt) -> dict[str, Any]:
    async with rt.dbs.app.read() as session:
        row = await accounts.get_user(session, user.id)
        mine = await communities.list_communities(session, user)
        if user.is_admin:  # admins see all communities in /communities, but "mine" here
            mine = [c for c in mine if c.id in user.community_ids]
    out = user_dict(row, private=True, communities=mine)
    out["pending_email"] = await account_email.pending_email(rt, user.id)
    return out


@router.post("/password/change", status_code=204)
async def change_password(
    body: PasswordChangeIn, request: Request, user: CurrentUser, creds: Bearer, rt: Rt, uow: Uow
) -> Response:
    """Every other sign-in of the person ends; the one this request came with goes on."""
    token = creds.credentials if creds else None
    await auth.change_password(
        rt,
        uow,
        user,
        current_password=body.current_password,
        new_password=body.new_password,
        signin=signin_of(rt, token, None if token else request.cookies.get(SESSION_COOKIE)),
        address=request.client and request.client.host,
    )
    return Response(status_code=204)
