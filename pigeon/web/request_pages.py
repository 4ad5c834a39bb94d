"""Message requests in the pages: the requests list, and the answers a request's banner
offers (accept, decline, block, report). The same services as `GET
/api/v1/conversations?requests=true` and `POST /api/v1/conversations/{id}/accept|decline`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.responses import Response

from pigeon.core.errors import AppError, Invalid
from pigeon.core.types import RowIdPath
from pigeon.messaging import requests, views
from pigeon.messaging.schemas import ReportIn
from pigeon.web.deps import Form, PageCtx, field, nav
from pigeon.web.message_pages import page_before, render_thread
from pigeon.web.render import render
from pigeon.web.views import convo_row

router = APIRouter()
NOTICES = {
    "declined": "Declined. They are not told; if they write again it comes back here.",
    "blocked": "Declined and blocked. They can no longer message you.",
    "reported": "Declined and reported. Thanks, the moderators will look at it.",
}
ANSWERS = ("decline", "block", "report")
REQUESTS_PAGE = 50


@router.get("/messages/requests")
async def requests_list(
    request: Request,
    ctx: PageCtx,
    partial: Annotated[int, Query(ge=0, le=1)] = 0,
    notice: Annotated[str, Query(max_length=20)] = "",
    before: str | None = None,
) -> Response:
    page = await views.list_conversations(
        ctx, limit=REQUESTS_PAGE, before=page_before(before), requests=True
    )
    following = views.next_before(page, REQUESTS_PAGE, archived=True)  # none pinned here
    context = {
        "rows": [convo_row(c.model_dump(), ctx.viewer.id) for c in page],
        "older": following.isoformat() if following else None,
        "current": 0,
        "paged": bool(before),
        "archived": False,
        "requests": True,
        "notice": NOTICES.get(notice),
    }
    if partial:
        return render(request, "messages/_list.html", context)
    context.update(await nav(request, ctx.viewer), title="Message requests", section="messages")
    return render(request, "messages/requests.html", context)


@router.post("/messages/{conversation_id}/accept")
async def accept(conversation_id: RowIdPath, ctx: PageCtx, form: Form) -> Response:
    await requests.accept(ctx, conversation_id)
    return RedirectResponse(f"/messages/{conversation_id}#latest", status_code=303)


@router.post("/messages/{conversation_id}/decline")
async def decline(
    request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    """Decline, Block (and decline) or Report (and decline): `answer` says which."""
    answer = field(form, "answer")
    try:
        if answer not in ANSWERS:
            raise Invalid("Pick how to answer the request.", fields={"answer": "unknown"})
        report = None
        if answer == "report":
            report = ReportIn.model_validate(
                {"reason": field(form, "reason"), "details": field(form, "details")}
            )
        await requests.decline(
            ctx,
            conversation_id,
            block=answer == "block",
            report_reason=report.reason if report else None,
            report_details=report.details if report else "",
        )
    except ValidationError:
        return await render_thread(
            request,
            ctx,
            conversation_id,
            error="To report, pick a reason, and keep the details under 1,000 characters.",
            status=422,
        )
    except AppError as exc:
        if exc.status == 404 or exc.code == "messaging_disabled":
            raise
        await ctx.uow.rollback()
        response = await render_thread(
            request, ctx, conversation_id, error=exc.message, status=exc.status
        )
        if exc.headers:
            response.headers.update(exc.headers)
        return response
    notice = {"decline": "declined", "block": "blocked", "report": "reported"}[answer]
    return RedirectResponse(f"/messages/requests?notice={notice}", status_code=303)
