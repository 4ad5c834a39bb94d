"""Moderation routes: the report queue, resolving reports, suspensions."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from pigeon.admin import moderation
from pigeon.core.deps import Rt, StaffUser, Uow
from pigeon.core.schemas import In, Paragraph
from pigeon.core.types import INT64_MAX, Instant, RowIdPath, UserIdPath
from pigeon.media.serving import serve
from pigeon.messaging.deps import MessagingCtx
from pigeon.messaging.schemas import AttachmentOut

router = APIRouter()


class PersonOut(BaseModel):
    id: int
    username: str | None
    display_name: str
    suspended_until: dt.datetime | None


class QueueItemOut(BaseModel):
    id: int
    message_id: int | None = Field(description="null: a report on a person")
    conversation_id: int | None
    community_id: int | None
    reason: str
    details: str
    body: str = Field(description="the message as it was when reported (empty for a person)")
    message_created_at: dt.datetime | None
    message_state: Literal["visible", "deleted", "removed", "person"]
    reports_on_message: int
    reporter: PersonOut
    author: PersonOut
    status: str
    action: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: PersonOut | None
    attachments: list[AttachmentOut] = Field(
        default_factory=list, description="the message's files, for as long as the report is open"
    )


class ResolveIn(In):
    action: Literal["dismiss", "delete_message", "suspend_author"]
    until: Instant | None = Field(default=None, description="suspend_author: when it ends")
    note: Paragraph(1000, "note") = ""  # type: ignore[valid-type]


class SuspendIn(In):
    until: Instant | None = Field(default=None, description="none: until lifted")
    reason: Paragraph(1000, "reason") = ""  # type: ignore[valid-type]


class SuspensionOut(BaseModel):
    user_id: int
    suspended_until: dt.datetime | None


@router.get("/admin/reports", response_model=list[QueueItemOut], tags=["admin"])
async def queue(
    user: StaffUser,
    uow: Uow,
    response: Response,
    status: Literal["open", "resolved", "all"] = "open",
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    page = await moderation.list_reports(uow, user, status=status, before_id=before_id, limit=limit)
    if len(page) == limit:
        response.headers["X-Next-Before-Id"] = str(page[-1].entry.report.id)
    return [item.view() for item in page]


@router.get("/admin/reports/{report_id}", response_model=QueueItemOut, tags=["admin"])
async def one_report(report_id: RowIdPath, user: StaffUser, uow: Uow) -> Any:
    return (await moderation.get_report(uow, user, report_id)).view()


@router.post("/admin/reports/{report_id}/resolve", response_model=QueueItemOut, tags=["admin"])
async def resolve(report_id: RowIdPath, body: ResolveIn, user: StaffUser, ctx: MessagingCtx) -> Any:
    item = await moderation.resolve(
        ctx, report_id, action=body.action, until=body.until, note=body.note
    )
    return item.view()


@router.get(
    "/admin/reports/{report_id}/files/{attachment_id}", response_class=Response, tags=["admin"]
)
async def report_file(
    report_id: RowIdPath,
    attachment_id: RowIdPath,
    request: Request,
    user: StaffUser,
    rt: Rt,
    uow: Uow,
) -> Response:
    """A file of the reported message, while the report is open (even if removed since)."""
    found = await moderation.report_file(uow, user, report_id, attachment_id, thumbnail=False)
    return await serve(request, rt.media, found)


@router.get(
    "/admin/reports/{report_id}/files/{attachment_id}/thumbnail",
    response_class=Response,
    tags=["admin"],
)
async def report_thumbnail(
    report_id: RowIdPath,
    attachment_id: RowIdPath,
    request: Request,
    user: StaffUser,
    rt: Rt,
    uow: Uow,
) -> Response:
    found = await moderation.report_file(uow, user, report_id, attachment_id, thumbnail=True)
    return await serve(request, rt.media, found)


@router.post("/admin/users/{user_id}/suspend", response_model=SuspensionOut, tags=["admin"])
async def suspend(user_id: UserIdPath, body: SuspendIn, user: StaffUser, rt: Rt, uow: Uow) -> Any:
    until = await moderation.suspend(rt, uow, user, user_id, until=body.until, reason=body.reason)
    return {"user_id": user_id, "suspended_until": until}


@router.delete("/admin/users/{user_id}/suspend", response_model=SuspensionOut, tags=["admin"])
async def unsuspend(user_id: UserIdPath, user: StaffUser, rt: Rt, uow: Uow) -> Any:
    await moderation.unsuspend(rt, uow, user, user_id)
    return {"user_id": user_id, "suspended_until": None}
