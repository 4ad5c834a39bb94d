"""The moderation queue's own page (for managers; admins see it on the admin page too).

The same services as `GET /api/v1/admin/reports` and `POST .../resolve`; managers see their
community's reports only, admins all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from pigeon.admin import moderation
from pigeon.core.deps import Uow
from pigeon.core.errors import AppError, Invalid, NotAllowed
from pigeon.core.principal import Principal
from pigeon.core.types import RowIdPath, utc_within_range
from pigeon.core.uow import UnitOfWork
from pigeon.web.deps import Form, PageCtx, field, nav, page_user
from pigeon.web.render import render

router = APIRouter()
NOTICES = {"resolved": "Report resolved."}


async def page_staff(user: Annotated[Principal, Depends(page_user)]) -> Principal:
    if not user.is_staff:
        raise NotAllowed("Only managers and admins can moderate.", code="staff_only")
    return user


PageStaff = Annotated[Principal, Depends(page_staff)]


@router.get("/admin/reports")
async def reports_page(
    request: Request,
    user: PageStaff,
    uow: Uow,
    status: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
    notice: str | None = None,
) -> Response:
    return await render_reports(request, user, uow, status=status, notice=NOTICES.get(notice or ""))


async def render_reports(
    request: Request,
    user: Principal,
    uow: UnitOfWork,
    *,
    status: str = "open",
    notice: str | None = None,
    error: str | None = None,
    code: int = 200,
) -> Response:
    found = await moderation.list_reports(uow, user, status=status, limit=100)
    reports = [item.view() for item in found]
    context = {
        **await nav(request, user),
        "title": "Reports",
        "section": "admin" if user.is_admin else "reports",  # the link each one's nav has
        "status": status,
        "notice": notice,
        "error": error,
        "ctx": {"reports": reports, "back": f"/admin/reports?status={status}", "full": False},
    }
    return render(request, "admin/reports_page.html", context, status=code)


@router.post("/admin/reports/{report_id}/resolve")
async def resolve(
    request: Request, report_id: RowIdPath, user: PageStaff, ctx: PageCtx, form: Form
) -> Response:
    """The same service as `POST /api/v1/admin/reports/{id}/resolve`."""
    back = field(form, "back")
    back = back if back.startswith("/admin") and "//" not in back else "/admin/reports"
    try:
        await moderation.resolve(
            ctx,
            report_id,
            action=field(form, "action"),
            until=_date(field(form, "until")),
            note=field(form, "note").strip()[:1000],
        )
    except AppError as exc:
        if exc.status == 404:
            raise
        await ctx.uow.rollback()
        return await render_reports(request, user, ctx.uow, error=exc.message, code=exc.status)
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}notice=resolved#reports", status_code=303)


def _date(value: str) -> dt.datetime | None:
    """The form's date field: the suspension ends at the end of that day (UTC); empty: no end."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
        return utc_within_range(dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC))
    except ValueError:
        raise Invalid("Pick the day the suspension ends.", fields={"until": "not a date"}) from None
