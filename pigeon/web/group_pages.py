"""A group's info page: its title, members and their roles; rename, add and remove people,
leave, delete. The same services as `/api/v1/groups/...` and `PATCH /api/v1/conversations/{id}`:
what the viewer may do comes from `groups.powers`, and every refusal is the service's own,
shown in place."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.accounts.views import user_dict
from pigeon.core.errors import AppError, Invalid
from pigeon.core.types import RowIdPath
from pigeon.messaging import eligibility, groups, views
from pigeon.messaging.context import Ctx
from pigeon.web.deps import Form, PageCtx, field, int_field, nav
from pigeon.web.render import render
from pigeon.web.views import convo_label

router = APIRouter()
MAX_PICKED = 1000  # more ticks than any form of ours shows; the service bounds group size
SEARCH_LIMIT = 30
ROLE_ORDER = {"owner": 0, "admin": 1}
ROLE_LABELS = {"owner": "Owner", "admin": "Admin", "member": "Member"}
NOTICES = {
    "renamed": "The group's name is saved.",
    "added": "Added to the group.",
    "nobody_new": "They were already in the group.",
    "removed": "Removed from the group.",
}
# refusals that get the error page rather than the info page: the group is out of reach
ELSEWHERE = ("conversation_not_found", "messaging_disabled", "csrf_failed")


def info_url(conversation_id: int, notice: str | None = None) -> str:
    return f"/messages/{conversation_id}/info" + (f"?notice={notice}" if notice else "")


async def _candidates(ctx: Ctx, q: str, members: set[int]) -> list[dict[str, Any]]:
    """People the search finds in the viewer's communities (as on /messages/new), not in the
    group yet, each with whether they may be added and, if not, why."""
    async with ctx.dbs.app.read() as session:
        found = await accounts.search_users(session, ctx.viewer, q=q, limit=SEARCH_LIMIT)
    outside = [u for u in found if u.id not in members]
    may = await eligibility.for_people(ctx, [u.id for u in outside])
    return [{"user": user_dict(u), "may": may[u.id]} for u in outside if u.id in may]


async def render_info(
    request: Request,
    ctx: Ctx,
    conversation_id: int,
    *,
    q: str = "",
    notice: str | None = None,
    error: str | None = None,
    title: str | None = None,
    picked: set[int] | None = None,
    status: int = 200,
) -> Response:
    convo = await groups.access_group(ctx, conversation_id)
    view = (await views.get_conversation(ctx, conversation_id)).model_dump()
    may = groups.powers(ctx.viewer, convo)
    members = sorted(
        view["participants"],
        key=lambda p: (ROLE_ORDER.get(p["role"], 2), p["display_name"].casefold(), p["id"]),
    )
    label = convo_label(view, ctx.viewer.id)
    context = {
        **await nav(request, ctx.viewer, ctx.uow),
        "title": f"{label} · Group info",
        "section": "messages",
        "convo": view,
        "label": label,
        "members": members,
        "roles": ROLE_LABELS,
        "may": may,
        "q": q,
        "candidates": await _candidates(ctx, q, set(convo.members)) if may.add else [],
        "picked": picked or set(),
        "group_title": title if title is not None else view["title"] or "",
        "max_title": ctx.settings.max_title_chars,
        "notice": notice,
        "error": error,
    }
    return render(request, "messages/group_info.html", context, status=status)


@router.get("/messages/{conversation_id}/info")
async def info(
    request: Request,
    conversation_id: RowIdPath,
    ctx: PageCtx,
    q: Annotated[str, Query(max_length=100)] = "",
    notice: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Members only; for a direct conversation, or someone not in the group, "No such
    conversation" (as the API answers)."""
    return await render_info(request, ctx, conversation_id, q=q, notice=NOTICES.get(notice))


async def _refused(
    request: Request, ctx: Ctx, conversation_id: int, exc: AppError, form: FormData, **kept: Any
) -> Response:
    """The info page again, with the service's reason where the person acted."""
    if exc.code in ELSEWHERE:
        raise exc
    await ctx.uow.rollback()
    response = await render_info(
        request,
        ctx,
        conversation_id,
        q=field(form, "q")[:100],
        error=exc.message,
        status=exc.status,
        **kept,
    )
    if exc.headers:
        response.headers.update(exc.headers)
    return response


@router.post("/messages/{conversation_id}/group/rename")
async def rename(
    request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    title = field(form, "title")
    try:
        if len(title) > 1000:
            raise Invalid("That name is too long.", fields={"title": "too long"})
        await groups.rename(ctx, conversation_id, title)
    except AppError as exc:
        return await _refused(request, ctx, conversation_id, exc, form, title=title[:1000])
    return RedirectResponse(info_url(conversation_id, "renamed"), status_code=303)


@router.post("/messages/{conversation_id}/group/add")
async def add(request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form) -> Response:
    """The ticked people from the search (`member`, repeated)."""
    values = form.getlist("member")
    ids = {int(v) for v in values if isinstance(v, str) and v.isdigit() and len(v) < 11}
    try:
        if not ids or len(values) > MAX_PICKED:
            raise Invalid("Tick the people to add.", fields={"member": "pick someone"})
        added = await groups.add_members(ctx, conversation_id, sorted(ids))
    except AppError as exc:
        return await _refused(request, ctx, conversation_id, exc, form, picked=ids)
    return RedirectResponse(
        info_url(conversation_id, "added" if added else "nobody_new"), status_code=303
    )


@router.post("/messages/{conversation_id}/group/remove")
async def remove(
    request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    user_id = int_field(form, "user_id")
    try:
        if user_id is None:
            raise Invalid("Pick someone to remove.", fields={"user_id": "required"})
        await groups.remove_member(ctx, conversation_id, user_id)
    except AppError as exc:
        return await _refused(request, ctx, conversation_id, exc, form)
    if user_id == ctx.viewer.id:
        return RedirectResponse("/messages?notice=left", status_code=303)
    return RedirectResponse(info_url(conversation_id, "removed"), status_code=303)


@router.post("/messages/{conversation_id}/group/leave")
async def leave(request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form) -> Response:
    """Anyone may leave; an owner who leaves hands the group on (see `groups.remove_member`)."""
    try:
        await groups.remove_member(ctx, conversation_id, ctx.viewer.id)
    except AppError as exc:
        return await _refused(request, ctx, conversation_id, exc, form)
    return RedirectResponse("/messages?notice=left", status_code=303)


@router.post("/messages/{conversation_id}/group/delete")
async def delete(
    request: Request, conversation_id: RowIdPath, ctx: PageCtx, form: Form
) -> Response:
    try:
        await groups.delete_group(ctx, conversation_id)
    except AppError as exc:
        return await _refused(request, ctx, conversation_id, exc, form)
    return RedirectResponse("/messages?notice=group_deleted", status_code=303)
