"""The outbox for admins: what is waiting, sent or dead (without bodies), and a retry."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from pigeon.admin.schemas import OutboxEmailOut
from pigeon.core.deps import AdminUser, Rt, Uow
from pigeon.core.types import INT64_MAX, RowIdPath
from pigeon.email import outbox

router = APIRouter(prefix="/admin/email", tags=["admin"])


@router.get("", response_model=list[OutboxEmailOut])
async def list_email(
    user: AdminUser,
    rt: Rt,
    response: Response,
    state: outbox.State = "pending",
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Any]:
    async with rt.dbs.app.read() as session:
        page = list(
            await outbox.list_outbox(session, state=state, before_id=before_id, limit=limit)
        )
    if len(page) == limit:  # the next page: the same query with before_id set to this
        response.headers["X-Next-Before-Id"] = str(page[-1].id)
    return page


@router.post("/{email_id}/retry", response_model=OutboxEmailOut)
async def retry_email(email_id: RowIdPath, user: AdminUser, uow: Uow) -> Any:
    return await outbox.retry_dead(uow, user, email_id)
