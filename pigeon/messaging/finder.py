"""Finding one's own conversations by who is in them or what a group is called.

Only conversations the viewer takes part in and would see in their list (archived ones too;
not ones they removed for themselves until something new happens there). The names live in the
other database, so the viewer's conversations and their members are read first and the names
matched after one batched read of those people.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import select

from pigeon.accounts import service as accounts
from pigeon.messaging.context import Ctx
from pigeon.messaging.models import Conversation, Participant
from pigeon.messaging.schemas import ConversationOut
from pigeon.messaging.service import not_removed, require_enabled
from pigeon.messaging.views import conversation_views

MAX_SCANNED = 2000  # the most recent conversations looked through for a name


def folded(text: str) -> str:
    """Case and accents left out, so "zoe" finds "Zoë"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


async def find_conversations(ctx: Ctx, q: str, *, limit: int = 20) -> list[ConversationOut]:
    """The viewer's conversations whose group title, or one of whose other members' display
    name or username, contains `q`; latest activity first. An empty query finds nothing."""
    await require_enabled(ctx)
    needle = folded(q.strip())
    if not needle:
        return []
    mine = (
        select(Conversation)
        .join(Participant, Participant.conversation_id == Conversation.id)
        .where(Participant.user_id == ctx.viewer.id, Conversation.deleted_at.is_(None))
        .where(not_removed())
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(MAX_SCANNED)
    )
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        rows = (await session.scalars(mine)).all()
        by_id = {r.id: r for r in rows}
        titled = {r.id for r in rows if r.title and needle in folded(r.title)}
        members = (
            await session.execute(
                select(Participant.conversation_id, Participant.user_id, Participant.display_name)
                .where(Participant.conversation_id.in_(by_id))
                .where(Participant.user_id != ctx.viewer.id)
            )
        ).all()
        async with ctx.dbs.app.read() as app_session:
            users = await accounts.users_by_ids(app_session, {m.user_id for m in members})
        named = set()
        for m in members:
            user = users.get(m.user_id)
            names = (user.display_name, user.username) if user else (m.display_name,)
            if any(needle in folded(name or "") for name in names):
                named.add(m.conversation_id)
        hits = [r for r in rows if r.id in titled or r.id in named][:limit]
        return await conversation_views(ctx, hits, session)


async def conversations_by_ids(ctx: Ctx, ids: set[int]) -> dict[int, ConversationOut]:
    """The viewer's own conversations among `ids` (to name where search results were said)."""
    if not ids:
        return {}
    stmt = (
        select(Conversation)
        .join(Participant, Participant.conversation_id == Conversation.id)
        .where(Participant.user_id == ctx.viewer.id, Conversation.id.in_(ids))
    )
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        rows = (await session.scalars(stmt)).all()
        return {c.id: c for c in await conversation_views(ctx, rows, session)}
