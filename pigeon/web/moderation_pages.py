"""The moderation queue in the web UI: a section of the admin page, and a page for managers.

Both call the same service as `GET /api/v1/admin/reports` and `POST .../resolve`; managers see
their community's reports only, admins all of them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from pigeon.accounts.service import Principal
from pigeon.admin import moderation
from pigeon.core.errors import AppError, Invalid, NotAllowed
from pigeon.core.types import RowIdPath
from pigeon.web import admin_pages
from pigeon.web.deps import Form, field, nav, page_user
from pigeon.web.render import render

router = APIRouter()
SECTION_SIZE = 20
NOTICES = {"resolved": "Report resolved."}


async def page_staff(user: Annotated[Principal, Depends(page_user)]) -> Principal:
    if not user.is_staff:
        raise NotAllowed("Only managers and admins can moderate.", code="staff_only")
    return user


PageStaff = Annotated[Principal, Depends(page_staff)]


async def queue_section(request: Request, user: Principal) -> dict[str, Any]:
    reports = await moderation.list_reports(
        request.app.state.dbs, user, status="open", limit=SECTION_SIZE
    )
    return {"reports": reports, "back": "/admin", "full": len(reports) == SECTION_SIZE}


admin_pages.register_section("admin/reports.html", queue_section)
admin_pages.NOTICES.setdefault("resolved", NOTICES["resolved"])


@router.get("/admin/reports")
async def reports_page(
    request: Request,
    user: PageStaff,
    status: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open",
    notice: str | None = None,
) -> Response:
    return await render_reports(request, user, status=status, notice=NOTICES.get(notice or ""))


async def render_reports(
    request: Request,
    user: Principal,
    *,
    status: str = "open",
    notice: str | None = None,
    error: str | None = None,
    code: int = 200,
) -> Response:
    reports = await moderation.list_reports(request.app.state.dbs, user, status=status, limit=100)
    context = {
        **await nav(request, user),
        "title": "Reports",
        "section": "admin",
        "status": status,
        "notice": notice,
        "error": error,
        "ctx": {"reports": reports, "back": f"/admin/reports?status={status}", "full": False},
    }
    return render(request, "admin/reports_page.html", context, status=code)


@router.post("/admin/reports/{report_id}/resolve")
async def resolve(request: Request, report_id: RowIdPath, user: PageStaff, form: Form) -> Response:
    """The same code path as `POST /api/v1/admin/reports/{id}/resolve`."""
    back = field(form, "back")
    back = back if back.startswith("/admin") and "//" not in back else "/admin/reports"
    try:
        await moderation.resolve(
            request.app.state.dbs,
            user,
            report_id,
            action=field(form, "action"),
            until=_date(field(form, "until")),
            note=field(form, "note").strip()[:1000],
        )
    except AppError as exc:
        if exc.status == 404:
            raise
        return await render_reports(request, user, error=exc.message, code=exc.status)
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}notice=resolved#reports", status_code=303)


def _date(value: str) -> dt.datetime | None:
    """The form's date field: the suspension ends at the end of that day (UTC); empty: no end."""
    if not value.strip():
        return None
    try:
        day = dt.date.fromisoformat(value.strip())
    except ValueError:
        raise Invalid("Pick the day the suspension ends.", fields={"until": "not a date"}) from None
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=dt.UTC)
