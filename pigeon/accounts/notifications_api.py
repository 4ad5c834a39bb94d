"""One's own notification settings: `GET` and `PATCH /me/notifications`."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter

from pigeon.accounts import notifications
from pigeon.accounts.schemas import NotificationsOut, NotificationsUpdate
from pigeon.core.deps import CurrentUser, Rt, Uow

router = APIRouter(prefix="/me/notifications", tags=["notifications"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not signed in (`not_authenticated`, `invalid_token`)"},
    404: {"description": "the account is gone (`user_not_found`)"},
}


@router.get(
    "",
    response_model=NotificationsOut,
    summary="Your notification settings",
    responses=ERRORS,
)
async def get_notifications(user: CurrentUser, rt: Rt) -> dict[str, Any]:
    async with rt.dbs.app.read() as session:
        found = await notifications.get_notifications(session, user.id)
    return dataclasses.asdict(found)


@router.patch(
    "",
    response_model=NotificationsOut,
    summary="Change your notification settings",
    description="Fields left out stay as they are. Muted conversations and message requests "
    "never notify, whatever these say.",
    responses={**ERRORS, 422: {"description": "not a boolean, or an unknown field"}},
)
async def update_notifications(
    body: NotificationsUpdate, user: CurrentUser, rt: Rt, uow: Uow
) -> dict[str, Any]:
    found = await notifications.update_notifications(
        uow, rt.limiter, user.id, email_digest=body.email_digest
    )
    return dataclasses.asdict(found)
