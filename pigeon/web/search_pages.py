"""The search page: my conversations by who is in them, people I could message, and my messages
by their words, over the same services as `GET /api/v1/search/conversations`,
`GET /api/v1/users/search` and `GET /api/v1/messages/search`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.accounts.views import user_dict
from pigeon.core.text import has_control
from pigeon.core.types import RowIdQuery
from pigeon.messaging import eligibility, finder, search
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.messaging.schemas import MessageOut
from pigeon.web.deps import PageCtx, nav
from pigeon.web.highlight import pieces
from pigeon.web.render import render
from pigeon.web.views import author, convo_label, convo_row, people_by_id, with_departed

router = APIRouter()
MAX_Q = 200  # as the API's
MESSAGES = 20
PEOPLE = 10


@router.get("/messages/search")
async def search_page(
    request: Request,
    ctx: PageCtx,
    q: Annotated[str, Query(max_length=2000)] = "",
    before_id: RowIdQuery = None,
) -> Response:
    await messaging.require_enabled(ctx)
    q = q.strip()
    error = None
    if len(q) > MAX_Q:
        error = f"Search for at most {MAX_Q} characters."
    elif has_control(q):
        error = "Search for words, without control characters."
    context: dict[str, Any] = {
        **await nav(request, ctx.viewer, ctx.uow),
        "title": f"Search: {q}" if q and not error else "Search",
        "section": "messages",
        "q": q,
        "search_q": q,
        "error": error,
        "paged": before_id is not None,
        "conversations": [],
        "people": [],
        "messages": [],
        "more_before": None,
    }
    if q and not error:
        if before_id is None:
            context["conversations"] = await _conversations(ctx, q)
            context["people"] = await _people(ctx, q)
        found = await search.search_messages(ctx, q, before_id=before_id, limit=MESSAGES + 1)
        shown = found[:MESSAGES]
        context["messages"] = await _messages(ctx, shown, q)
        context["more_before"] = shown[-1].id if len(found) > MESSAGES else None
    return render(request, "messages/search.html", context, status=422 if error else 200)


async def _conversations(ctx: Ctx, q: str) -> list[dict[str, Any]]:
    found = await finder.find_conversations(ctx, q, limit=20)
    return [convo_row(c.model_dump(), ctx.viewer.id) for c in found]


async def _people(ctx: Ctx, q: str) -> list[dict[str, Any]]:
    """People of my communities matching `q` whom I could message, as /messages/new finds them."""
    async with ctx.dbs.app.read() as session:
        found = await accounts.search_users(session, ctx.viewer, q=q, limit=PEOPLE)
    may = await eligibility.for_people(ctx, [u.id for u in found])
    return [
        {"user": user_dict(u), "conversation_id": may[u.id].conversation_id}
        for u in found
        if u.id in may and may[u.id].allowed
    ]


async def _messages(ctx: Ctx, found: list[MessageOut], q: str) -> list[dict[str, Any]]:
    convos = await finder.conversations_by_ids(ctx, {m.conversation_id for m in found})
    members = {cid: people_by_id(c.model_dump()) for cid, c in convos.items()}
    left = [m.sender_id for m in found if m.sender_id not in members.get(m.conversation_id, {})]
    gone = await with_departed(ctx.rt, {}, left)
    shaped = []
    for m in found:
        convo = convos.get(m.conversation_id)
        if convo is None:
            continue
        people = {**gone, **members[m.conversation_id]}
        shaped.append(
            {
                "id": m.id,
                "conversation_id": m.conversation_id,
                "where": convo_label(convo.model_dump(), ctx.viewer.id),
                "who": author(m.sender_id, ctx.viewer.id, people),
                "created_at": m.created_at,
                "pieces": pieces(m.body, q),
                "files": len(m.attachments),
            }
        )
    return shaped
