from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from pigeon.accounts import service as accounts
from pigeon.accounts.schemas import UserOut
from pigeon.accounts.views import user_dict
from pigeon.admin import service as admin
from pigeon.admin.schemas import AdminUserUpdate, AuditOut, MessagingSwitchIn, MessagingSwitchOut
from pigeon.core.audit import list_audit
from pigeon.core.deps import AdminUser, Rt, Uow
from pigeon.core.switches import MESSAGING_ENABLED, mode_of
from pigeon.core.types import INT32_MAX, INT64_MAX, NO_NUL, Instant, UserIdPath

router = APIRouter(prefix="/admin", tags=["admin"])


async def switch_state(rt: Rt, uow: Uow) -> dict[str, Any]:
    row = await rt.switches.row(MESSAGING_ENABLED, uow)
    mode = mode_of(row.value if row else False)
    return {
        "enabled": mode != "off",
        "mode": mode,
        "updated_at": row.updated_at if row else None,
        "updated_by": row.updated_by if row else None,
    }


@router.get("/settings/messaging", response_model=MessagingSwitchOut)
async def get_messaging(user: AdminUser, rt: Rt, uow: Uow) -> dict[str, Any]:
    return await switch_state(rt, uow)


@router.put("/settings/messaging", response_model=MessagingSwitchOut)
async def put_messaging(body: MessagingSwitchIn, user: AdminUser, rt: Rt, uow: Uow) -> Any:
    await admin.set_messaging_mode(
        rt, uow, body.wanted, actor_id=user.id, actor_label=user.username
    )
    return await switch_state(rt, uow)


@router.get("/users", response_model=list[UserOut])
async def users(
    user: AdminUser,
    rt: Rt,
    q: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT32_MAX)] = 0,
) -> list[dict[str, Any]]:
    async with rt.dbs.app.read() as session:
        found = await accounts.list_users(session, q=q, limit=limit, offset=offset)
    return [user_dict(u, private=True) for u in found]


@router.patch("/users/{user_id}", response_model=UserOut)
async def update_user(
    user_id: UserIdPath, body: AdminUserUpdate, user: AdminUser, uow: Uow, rt: Rt
) -> dict[str, Any]:
    target = await admin.update_user(
        uow,
        user,
        user_id,
        limiter=rt.limiter,
        tier=body.tier,
        role=body.role,
        is_active=body.is_active,
    )
    return user_dict(target, private=True)


@router.get("/audit", response_model=list[AuditOut])
async def audit_log(
    user: AdminUser,
    rt: Rt,
    response: Response,
    actor_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: Instant | None = None,
    until: Instant | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Any]:
    async with rt.dbs.app.read() as session:
        page = list(
            await list_audit(
                session,
                actor_id=actor_id,
                action=action,
                since=since,
                until=until,
                before_id=before_id,
                limit=limit,
            )
        )
    if len(page) == limit:  # the next page: the same query with before_id set to this
        response.headers["X-Next-Before-Id"] = str(page[-1].id)
    return page
