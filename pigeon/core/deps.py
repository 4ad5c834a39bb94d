"""Typed dependencies the routes declare: the databases, the settings, who is asking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pigeon.accounts import service as accounts
from pigeon.accounts.service import Principal
from pigeon.auth import service as auth
from pigeon.core.db import Databases
from pigeon.core.errors import NotAllowed, Unauthorized
from pigeon.core.security import decode_token
from pigeon.settings import Settings

SESSION_COOKIE = "pigeon_session"
_bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login")


async def get_dbs(request: Request) -> Databases:
    return request.app.state.dbs


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


Dbs = Annotated[Databases, Depends(get_dbs)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]


async def principal_from_token(
    dbs: Databases, settings: Settings, token: str | None, *, cookie: str | None = None
) -> Principal:
    """Resolve a bearer access token (or a page's session cookie) to an active principal."""
    key = settings.signing_key()
    claims = decode_token(key, token) if token else None
    if claims is None and cookie:
        claims = decode_token(key, cookie, kind="session")
        if claims is not None:
            async with dbs.app.read() as session:
                if not await auth.family_active(session, str(claims.get("fid", ""))):
                    claims = None
    if claims is None:
        if token or cookie:
            raise Unauthorized("Your session has expired or is not valid.", code="invalid_token")
        raise Unauthorized("Sign in to continue.", code="not_authenticated")
    principal = await accounts.get_principal(dbs.app, claims["user_id"])
    if principal is None:
        raise Unauthorized("Your session is no longer valid.", code="invalid_token")
    if principal.is_suspended():
        raise NotAllowed("Your account is suspended.", code="account_suspended")
    return principal


async def current_principal(
    request: Request,
    creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    token = creds.credentials if creds else None
    cookie = None if token else request.cookies.get(SESSION_COOKIE)
    state = request.app.state
    return await principal_from_token(state.dbs, state.settings, token, cookie=cookie)


CurrentUser = Annotated[Principal, Depends(current_principal)]


async def admin_principal(user: CurrentUser) -> Principal:
    if not user.is_admin:
        raise NotAllowed("Only admins can do that.", code="admin_only")
    return user


async def staff_principal(user: CurrentUser) -> Principal:
    if not user.is_staff:
        raise NotAllowed("Only managers and admins can do that.", code="staff_only")
    return user


AdminUser = Annotated[Principal, Depends(admin_principal)]
StaffUser = Annotated[Principal, Depends(staff_principal)]
