"""Typed dependencies the routes declare: the runtime, the unit of work, who is asking."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pigeon.core.db import Databases
from pigeon.core.errors import NotAllowed
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


Rt = Annotated[Runtime, Depends(get_runtime)]


async def get_dbs(rt: Rt) -> Databases:
    return rt.dbs


async def get_app_settings(rt: Rt) -> Settings:
    return rt.settings


async def get_uow(rt: Rt) -> AsyncIterator[UnitOfWork]:
    """The request's unit of work: committed when the route returns, before the response is
    sent (acknowledged means durable), then its events published; rolled back on an error."""
    async with rt.uow_scope() as uow:
        yield uow


Dbs = Annotated[Databases, Depends(get_dbs)]
AppSettings = Annotated[Settings, Depends(get_app_settings)]
Uow = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


# --- who is asking (resolved by auth, which the app installs as `Runtime.authenticate`) ---

SESSION_COOKIE = "pigeon_session"
_bearer = HTTPBearer(auto_error=False, description="An access token from /auth/login")


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def current_principal(request: Request, rt: Rt, creds: Bearer) -> Principal:
    token = creds.credentials if creds else None
    cookie = None if token else request.cookies.get(SESSION_COOKIE)
    return await rt.authenticate(token, cookie)


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
