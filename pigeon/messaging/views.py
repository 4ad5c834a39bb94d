"""Conversations as a viewer sees them: the list, one conversation, its participants and the
last message each shows (never one from someone the viewer blocked in a group).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

from sqlalchemy import Select, and_, bindparam, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import blocks
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.core.people import withheld
from pigeon.messaging.context import Ctx
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.messaging.organising import MAX_PINNED
from pigeon.messaging.schemas import ConversationOut, ParticipantOut
from pigeon.messaging.service import (
    _not_found,
    access_conversation,
    blocked_senders,
    messages_out_in,
    not_removed,
    require_enabled,
    since,
)
from pigeon.messaging.visibility import (
    retention_days,
    visible_messages,
)


async def conversation_views(
    ctx: Ctx, rows: Sequence[Conversation], session: AsyncSession
) -> list[ConversationOut]:
    """Shape conversations for the viewer: participants, last message, unread count."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    last_ids = [r.last_message_id for r in rows if r.last_message_id]
    members = (await session.scalars(_MEMBERS_OF, {"ids": ids})).all()
    lasts: dict[int, Message] = {}
    if last_ids:
        found = await session.scalars(_MESSAGES_BY_ID, {"ids": last_ids})
        lasts = {m.id: m for m in found}
    lasts = await _previews_without_blocked(ctx, rows, lasts, session)
    previews = await messages_out_in(session, list(lasts.values()))
    last_out = {m.id: m for m in previews}
    by_conv: dict[int, list[Participant]] = {}
    for m in members:
        by_conv.setdefault(m.conversation_id, []).append(m)
    async with ctx.dbs.app.read() as app_session:
        users = await accounts.users_by_ids(app_session, {m.user_id for m in members})
    cutoff = since(ctx)
    days = retention_days(ctx.settings, ctx.viewer)
    edges = await blocks.get_block_edges(ctx.rt, ctx.viewer.id)
    viewer = ctx.viewer
    unseen = withheld(
        edges, viewer.id, viewer.shows_last_seen, {i: u.show_last_seen for i, u in users.items()}
    )
    unread_by = withheld(
        edges, viewer.id, viewer.sends_receipts, {i: u.read_receipts for i, u in users.items()}
    )
    views = []
    for r in rows:
        mine = next((m for m in by_conv.get(r.id, []) if m.user_id == ctx.viewer.id), None)
        last = lasts.get(r.last_message_id) if r.last_message_id else None
        views.append(
            ConversationOut.model_construct(
                id=r.id,
                kind=r.kind,
                title=r.title,
                created_by=r.created_by,
                participants=[
                    participant_out(
                        m,
                        users.get(m.user_id),
                        last_seen=m.user_id not in unseen,
                        reads=m.user_id not in unread_by,
                        quiet=m.user_id != ctx.viewer.id and m.request_pending,
                    )
                    for m in by_conv.get(r.id, [])
                ],
                last_message=last_out[last.id] if last and last.created_at >= cutoff else None,
                unread_count=mine.unread_count if mine else 0,
                last_read_message_id=mine.last_read_message_id if mine else 0,
                muted=bool(mine and mine.muted),
                pinned=bool(mine and mine.pinned_at),
                archived=bool(mine and _archived(mine, r)),
                marked_unread=bool(mine and mine.marked_unread),
                request=bool(mine and mine.request_pending),
                created_at=r.created_at,
                updated_at=r.updated_at,
                retention_days=days,
            )
        )
    return views


_MEMBERS_OF = select(Participant).where(
    Participant.conversation_id.in_(bindparam("ids", expanding=True))
)
_MESSAGES_BY_ID = select(Message).where(Message.id.in_(bindparam("ids", expanding=True)))


async def _previews_without_blocked(
    ctx: Ctx, rows: Sequence[Conversation], lasts: dict[int, Message], session: AsyncSession
) -> dict[int, Message]:
    """In groups, a blocker's preview is the latest message not from someone they blocked."""
    groups = [r for r in rows if r.kind == "group" and r.last_message_id in lasts]
    if not groups:
        return lasts
    blocked = await blocked_senders(ctx)
    stale = [
        r for r in groups if r.last_message_id and lasts[r.last_message_id].sender_id in blocked
    ]
    lasts = dict(lasts)
    for r in stale:  # rare: one query per conversation whose last word was a blocked one
        visible = visible_messages(
            ctx.viewer.id, since=since(ctx), hidden=blocked, conversation=(r.id, r.kind)
        )
        found = await session.scalar(visible.order_by(Message.id.desc()).limit(1))
        if found is not None and r.last_message_id:
            lasts[r.last_message_id] = found
        elif r.last_message_id:
            lasts.pop(r.last_message_id, None)
    return lasts


def participant_out(
    m: Participant, user: User | None, *, last_seen: bool, reads: bool, quiet: bool = False
) -> ParticipantOut:
    """A member as the viewer sees them: when they were last online and how far they have read
    only where `core.people.withheld` allows (not across a block, not when either keeps it
    to themselves), and neither while the conversation is a message request they have not
    accepted (`quiet`)."""
    last_seen, reads = last_seen and not quiet, reads and not quiet
    return ParticipantOut.model_construct(
        id=m.user_id,
        username=user.username if user and user.deleted_at is None else None,
        display_name=user.display_name if user else m.display_name,
        avatar_url=user.avatar_url if user else None,
        role=m.role,
        last_read_message_id=m.last_read_message_id if reads else 0,
        last_seen_at=user.last_seen_at if last_seen and user is not None else None,
    )


def next_before(
    page: Sequence[ConversationOut], limit: int, *, archived: bool = False
) -> dt.datetime | None:
    """Where the next page starts, when there may be one (pinned ones lead the first page
    beside a full page of the rest)."""
    rest = page if archived else [c for c in page if not c.pinned]
    return rest[-1].updated_at if len(rest) >= limit else None


def _archived(mine: Participant, conversation: Conversation) -> bool:
    return mine.archived_at is not None and conversation.updated_at <= mine.archived_at


async def list_conversations(
    ctx: Ctx,
    *,
    limit: int,
    before: dt.datetime | None = None,
    kind: str | None = None,
    archived: bool = False,
    requests: bool = False,
) -> list[ConversationOut]:
    """The viewer's conversations, latest activity first, their pinned ones on top of the
    first page. Archived ones (nothing new since) only when asked for; ones they removed for
    themselves (or declined) not until something new arrives. Message requests they have not
    accepted are a list of their own (`requests`), never in the others."""
    await require_enabled(ctx)
    first_page, stmt = _listing(requests, archived, kind is not None, before is not None)
    values = {"viewer": ctx.viewer.id, "limit": limit, "kind": kind, "before": before}
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        pinned = (await session.scalars(first_page, values)).all() if first_page is not None else []
        rows = (await session.scalars(stmt, values)).all()
        return await conversation_views(ctx, [*pinned, *rows], session)


@functools.cache
def _listing(
    requests: bool, archived: bool, by_kind: bool, paged: bool
) -> tuple[Select[tuple[Conversation]] | None, Select[tuple[Conversation]]]:
    """The list's queries (the pinned ones that lead the first page, if any; then the rest),
    for one shape of what was asked; shaped once, with parameters for the viewer, the limit,
    the kind and where the page starts, so that a list is not built and keyed each time."""
    shelved = and_(
        Participant.archived_at.is_not(None), Conversation.updated_at <= Participant.archived_at
    )
    stmt = (
        select(Conversation)
        .join(Participant, Participant.conversation_id == Conversation.id)
        .where(Participant.user_id == bindparam("viewer"), Conversation.deleted_at.is_(None))
        .where(not_removed())
        .where(Participant.request_pending.is_(requests))
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(bindparam("limit"))
    )
    if not requests:  # requests are one list, archived or not
        stmt = stmt.where(shelved if archived else not_(shelved))
    if by_kind:
        stmt = stmt.where(Conversation.kind == bindparam("kind"))
    pinned_first = None
    if not archived and not requests:  # pinned ones lead the first page, and only there
        if not paged:
            pinned_first = (
                stmt.where(Participant.pinned_at.is_not(None))
                .order_by(None)
                .order_by(Participant.pinned_at.desc())
                .limit(MAX_PINNED)
            )
        stmt = stmt.where(Participant.pinned_at.is_(None))
    if paged:
        stmt = stmt.where(Conversation.updated_at < bindparam("before"))
    return pinned_first, stmt


async def get_conversation(ctx: Ctx, conversation_id: int) -> ConversationOut:
    await require_enabled(ctx)
    await access_conversation(ctx, conversation_id)
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        row = await session.get(Conversation, conversation_id)
        if row is None:
            raise _not_found()
        return (await conversation_views(ctx, [row], session))[0]
