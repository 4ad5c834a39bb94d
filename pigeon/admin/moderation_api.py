"""Safety routes: reporting, the moderation queue, suspensions, search, a member's export.

Search lives here because it must honour the same limits as the rest of this module's
concerns: each viewer's retention window and their blocks.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from pigeon.accounts import export
from pigeon.admin import moderation
from pigeon.core.deps import AppSettings, CurrentUser, Dbs, StaffUser
from pigeon.core.schemas import In, Paragraph
from pigeon.core.types import INT64_MAX, RowIdPath, UserIdPath
from pigeon.messaging import reports, search
from pigeon.messaging.api import Ctx
from pigeon.messaging.schemas import MessageOut

router = APIRouter()

Reason = Literal[
    "spam", "harassment", "hate", "violence", "sexual", "self_harm", "impersonation", "other"
]
assert set(Reason.__args__) == set(reports.REASONS)  # type: ignore[attr-defined]


class ReportIn(In):
    reason: Reason
    details: Paragraph(1000, "details") = ""  # type: ignore[valid-type]


class ReportOut(BaseModel):
    id: int
    message_id: int
    conversation_id: int
    reason: str
    details: str
    status: str
    action: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None


class PersonOut(BaseModel):
    id: int
    username: str | None
    display_name: str
    suspended_until: dt.datetime | None


class QueueItemOut(BaseModel):
    id: int
    message_id: int
    conversation_id: int
    community_id: int | None
    reason: str
    details: str
    body: str = Field(description="the message as it was when reported")
    message_created_at: dt.datetime
    message_state: Literal["visible", "deleted", "removed"]
    reports_on_message: int
    reporter: PersonOut
    author: PersonOut
    status: str
    action: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolved_by: PersonOut | None


class ResolveIn(In):
    action: Literal["dismiss", "delete_message", "suspend_author"]
    until: dt.datetime | None = Field(default=None, description="suspend_author: when it ends")
    note: Paragraph(1000, "note") = ""  # type: ignore[valid-type]


class SuspendIn(In):
    until: dt.datetime | None = Field(default=None, description="none: until lifted")
    reason: Paragraph(1000, "reason") = ""  # type: ignore[valid-type]


class SuspensionOut(BaseModel):
    user_id: int
    suspended_until: dt.datetime | None


@router.post(
    "/messages/{message_id}/report", status_code=201, response_model=ReportOut, tags=["messaging"]
)
async def report(message_id: RowIdPath, body: ReportIn, ctx: Ctx, response: Response) -> Any:
    """Report a message to the moderators; reporting it again updates your report (200)."""
    found, created = await reports.report_message(
        ctx, message_id, reason=body.reason, details=body.details
    )
    response.status_code = 201 if created else 200
    return found


@router.get("/messages/search", response_model=list[MessageOut], tags=["messaging"])
async def search_messages(
    ctx: Ctx,
    q: Annotated[str, Query(max_length=200, pattern=r"^[^\x00]*$")] = "",
    conversation_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """My messages containing `q`, newest first (page with `before_id`)."""
    return await search.search_messages(
        ctx, q, conversation_id=conversation_id, before_id=before_id, limit=limit
    )


@router.get("/admin/reports", response_model=list[QueueItemOut], tags=["admin"])
async def queue(
    user: StaffUser,
    dbs: Dbs,
    response: Response,
    status: Literal["open", "resolved", "all"] = "open",
    before_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    page = await moderation.list_reports(dbs, user, status=status, before_id=before_id, limit=limit)
    if len(page) == limit:
        response.headers["X-Next-Before-Id"] = str(page[-1]["id"])
    return page


@router.get("/admin/reports/{report_id}", response_model=QueueItemOut, tags=["admin"])
async def one_report(report_id: RowIdPath, user: StaffUser, dbs: Dbs) -> Any:
    return await moderation.get_report(dbs, user, report_id)


@router.post("/admin/reports/{report_id}/resolve", response_model=QueueItemOut, tags=["admin"])
async def resolve(report_id: RowIdPath, body: ResolveIn, user: StaffUser, dbs: Dbs) -> Any:
    return await moderation.resolve(
        dbs, user, report_id, action=body.action, until=body.until, note=body.note
    )


@router.post("/admin/users/{user_id}/suspend", response_model=SuspensionOut, tags=["admin"])
async def suspend(user_id: UserIdPath, body: SuspendIn, user: StaffUser, dbs: Dbs) -> Any:
    until = await moderation.suspend(dbs, user, user_id, until=body.until, reason=body.reason)
    return {"user_id": user_id, "suspended_until": until}


@router.delete("/admin/users/{user_id}/suspend", response_model=SuspensionOut, tags=["admin"])
async def unsuspend(user_id: UserIdPath, user: StaffUser, dbs: Dbs) -> Any:
    await moderation.unsuspend(dbs, user, user_id)
    return {"user_id": user_id, "suspended_until": None}


@router.get(
    "/me/export",
    tags=["users"],
    responses={200: {"content": {"application/json": {}, "application/zip": {}}}},
)
async def my_export(user: CurrentUser, dbs: Dbs, settings: AppSettings) -> Response:
    """Your profile, conversations and messages as a file to keep."""
    name, content, media_type = await export.export_file(dbs, settings, user.id)
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
