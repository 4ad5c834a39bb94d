"""Deleting an account: one's own (`DELETE /me`) and, for admins, someone else's."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from pigeon.admin import closing
from pigeon.admin.schemas import AccountDeleteIn, AdminAccountDeleteIn
from pigeon.core.types import UserIdPath
from pigeon.messaging.deps import MessagingCtx

router = APIRouter(tags=["users"])


@router.delete("/me", status_code=204)
async def delete_me(body: AccountDeleteIn, request: Request, ctx: MessagingCtx) -> Response:
    await closing.delete_own_account(
        ctx,
        password=body.password,
        messages=body.messages,
        address=request.client and request.client.host,
    )
    return Response(status_code=204)


@router.delete("/admin/users/{user_id}", status_code=204, tags=["admin"])
async def delete_user(
    user_id: UserIdPath, body: AdminAccountDeleteIn, ctx: MessagingCtx
) -> Response:
    await closing.delete_account(ctx, user_id, messages=body.messages)
    return Response(status_code=204)
