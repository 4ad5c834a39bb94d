"""Conversations: access, start, list, history, unread counts.

Every operation gathers its facts (the switch, who is acting, memberships, blocks) and hands
them to `policy`; reads of people go to the primary database in one batched query per page.
Writes go through the request's unit of work (`ctx.uow`); facts a write depends on are read in
its transaction. Sending lives in `sending`, changes to what was sent in `changes`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import blocks, directory
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.core.clock import clock
from pigeon.core.errors import Invalid, NotFound
from pigeon.core.people import estranged
from pigeon.core.principal import Principal
from pigeon.messaging import policy
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import ConversationChange, ConversationUpdated
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.messaging.schemas import ConversationOut, MessageOut, ParticipantOut, UnreadOut
from pigeon.messaging.visibility import (
    blocked_by,
    retention_days,
    visible_messages,
    visible_since,
)


def message_out(row: Any) -> MessageOut:
    """A message as clients see it: a deleted one keeps its place, without its text."""
    deleted = row.deleted_at is not None
    return MessageOut.model_construct(
        id=row.id,
        conversation_id=row.conversation_id,
        sender_id=row.sender_id,
        body="" if deleted else row.body,
        created_at=row.created_at,
        edited_at=row.edited_at,
        deleted=deleted,
        reply_to_id=row.reply_to_id,
        attachments=[],
        reactions=[],
        client_msg_id=row.client_msg_id,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    role: str
    last_read_message_id: int
    unread_count: int


@dataclasses.dataclass(frozen=True, slots=True)
class Convo:
    """A live conversation and its members: what access and policy checks need."""

    id: int
    kind: str
    title: str | None
    created_by: int
    members: dict[int, Member]

    def other_ids(self, user_id: int) -> list[int]:
        return [uid for uid in self.members if uid != user_id]

    def role_of(self, user_id: int) -> str | None:
        member = self.members.get(user_id)
        return member.role if member else None

    @property
    def key(self) -> tuple[int, str]:
        return self.id, self.kind


# --- facts ---


async def require_enabled(ctx: Ctx) -> None:
    policy.check_enabled(await ctx.rt.switches.messaging_enabled())
    policy.check_active(ctx.viewer)


_CONVO = (
    select(
        Conversation.kind,
        Conversation.title,
        Conversation.created_by,
        Participant.user_id,
        Participant.role,
        Participant.last_read_message_id,
        Participant.unread_count,
    )
    .join(Participant, Participant.conversation_id == Conversation.id)
    .where(Conversation.deleted_at.is_(None))
)


def _convo(rows: Sequence[Row[Any]], conversation_id: int) -> Convo | None:
    if not rows:
        return None
    first = rows[0]
    members = {
        r.user_id: Member(r.user_id, r.role, r.last_read_message_id, r.unread_count) for r in rows
    }
    return Convo(conversation_id, first.kind, first.title, first.created_by, members)


def _fetch_convo(conn: Connection, conversation_id: int) -> Convo | None:
    rows = conn.execute(_CONVO.where(Conversation.id == conversation_id)).all()
    return _convo(rows, conversation_id)


async def load_convo(session: AsyncSession, conversation_id: int) -> Convo | None:
    rows = (await session.execute(_CONVO.where(Conversation.id == conversation_id))).all()
    return _convo(rows, conversation_id)


def _not_found() -> NotFound:
    return NotFound("No such conversation.", code="conversation_not_found")


async def access_conversation(ctx: Ctx, conversation_id: int) -> Convo:
    """The conversation, if the viewer takes part in it; not found and not allowed look alike.

    Inside a unit of work that already writes messaging, it is read in that transaction.
    """
    db = ctx.dbs.messaging
    if ctx.uow.has_written(db):
        convo = await load_convo(ctx.uow.messaging, conversation_id)
    else:
        convo = await db.run_read(lambda conn: _fetch_convo(conn, conversation_id))
    if convo is None or ctx.viewer.id not in convo.members:
        raise _not_found()
    return convo


async def access_for_change(ctx: Ctx, conversation_id: int) -> Convo:
    """The conversation, read inside the unit of work's transaction, for a change that
    depends on who its members are."""
    convo = await load_convo(ctx.uow.messaging, conversation_id)
    if convo is None or ctx.viewer.id not in convo.members:
        raise _not_found()
    return convo


async def blocked_senders(ctx: Ctx) -> set[int]:
    """Whom the viewer blocked: their group messages are hidden from the viewer (rule 4)."""
    return await blocked_by(ctx.rt, ctx.viewer.id)


async def unseen_by(ctx: Ctx, kind: str, sender_id: int) -> set[int]:
    """Who, in a group, blocked the sender: they neither see nor count that sender's messages."""
    if kind != "group":
        return set()
    return policy.blockers_of(sender_id, await blocks.get_block_edges(ctx.rt, sender_id))


async def hidden_senders(ctx: Ctx, convo: Convo) -> set[int]:
    """The senders hidden from the viewer in this conversation."""
    return await blocked_senders(ctx) if convo.kind == "group" else set()


def since(ctx: Ctx) -> dt.datetime:
    return visible_since(ctx.settings, ctx.viewer)


# --- starting conversations ---


def direct_key(a: int, b: int) -> str:
    lo, hi = sorted((a, b))
    return f"{lo}:{hi}"


async def check_people(ctx: Ctx, user_ids: Iterable[int]) -> dict[int, Principal]:
    """Everyone is someone the viewer may see (rule 3: someone outside the viewer's
    communities is answered exactly like someone who does not exist), and no block stands
    between them (rule 4)."""
    ids = set(user_ids) - {ctx.viewer.id}
    people = await directory.principals(ctx.rt, ids)
    unseen = {
        uid for uid in ids if uid not in people or not policy.visible_to(ctx.viewer, people[uid])
    }
    if unseen:
        raise NotFound(f"No such user: {min(unseen)}.", code="user_not_found")
    async with ctx.dbs.app.read() as session:
        pairs = await blocks.blocks_among(session, ctx.viewer.id, ids)
    policy.check_not_blocked(ctx.viewer.id, ids, pairs)
    return people


async def check_can_write(ctx: Ctx, convo: Convo) -> set[int]:
    """Rules 3 and 4 for everything written to a conversation that exists (a send, an edit,
    typing): the others still share a community with the writer, and in a direct
    conversation no block stands between them. Returns who, in a group, blocked the writer:
    they simply do not get it."""
    others = convo.other_ids(ctx.viewer.id)
    people = await directory.principals(ctx.rt, others)
    policy.check_same_community(ctx.viewer, people.values())
    edges = await blocks.get_block_edges(ctx.rt, ctx.viewer.id)
    return policy.send_blockers(convo.kind, ctx.viewer.id, others, edges)


async def find_direct(ctx: Ctx, other_id: int) -> int | None:
    return (await find_directs(ctx, [other_id])).get(other_id)


async def find_directs(ctx: Ctx, other_ids: Iterable[int]) -> dict[int, int]:
    """{other person: our direct conversation} for those we have one with; one query."""
    keys = {direct_key(ctx.viewer.id, uid): uid for uid in other_ids}
    if not keys:
        return {}
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        rows = await session.execute(
            select(Conversation.direct_key, Conversation.id).where(
                Conversation.direct_key.in_(keys), Conversation.deleted_at.is_(None)
            )
        )
        return {keys[key]: conv_id for key, conv_id in rows if key is not None}


def _insert(ctx: Ctx) -> Any:
    return postgresql.insert if ctx.dbs.messaging.dialect == "postgresql" else sqlite.insert


async def start_direct(ctx: Ctx, other_id: int) -> tuple[int, bool]:
    """The direct conversation with `other_id`: the existing one, or a new one (rule 5)."""
    await require_enabled(ctx)
    if other_id == ctx.viewer.id:
        raise Invalid(
            "You cannot start a conversation with yourself.",
            fields={"participant_ids": "must name someone else"},
        )
    existing = await find_direct(ctx, other_id)
    if existing is not None:
        await check_can_write(ctx, await access_conversation(ctx, existing))
        return existing, False
    policy.check_can_start(ctx.viewer)
    people = await check_people(ctx, [other_id])
    await ctx.rt.limiter.hit("start", ctx.viewer.id)
    now = clock.now()
    session = ctx.uow.messaging
    key = direct_key(ctx.viewer.id, other_id)
    conv_id = await session.scalar(
        _insert(ctx)(Conversation)
        .values(
            kind="direct",
            title=None,
            created_by=ctx.viewer.id,
            direct_key=key,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["direct_key"])
        .returning(Conversation.id)
    )
    if conv_id is None:  # the other person started it at the same moment
        found = await session.scalar(select(Conversation.id).where(Conversation.direct_key == key))
        if found is None:
            raise _not_found()
        return int(found), False
    await _open(ctx, int(conv_id), people, now=now)
    return int(conv_id), True


async def start_group(ctx: Ctx, member_ids: Sequence[int], title: str | None) -> int:
    await require_enabled(ctx)
    policy.check_can_start(ctx.viewer)
    title = policy.clean_title(title, ctx.settings.max_title_chars)
    ids = set(member_ids) - {ctx.viewer.id}
    if not ids:
        raise Invalid(
            "A group needs at least one other member.",
            fields={"participant_ids": "name at least one other person"},
        )
    policy.check_group_size(len(ids) + 1, ctx.settings.max_group_size)
    people = await check_people(ctx, ids)
    await ctx.rt.limiter.hit("start", ctx.viewer.id)
    now = clock.now()
    conv = Conversation(
        kind="group",
        title=title,
        created_by=ctx.viewer.id,
        direct_key=None,
        created_at=now,
        updated_at=now,
    )
    ctx.uow.messaging.add(conv)
    await ctx.uow.messaging.flush()
    await _open(ctx, conv.id, people, now=now)
    return conv.id


async def _open(ctx: Ctx, conv_id: int, people: dict[int, Principal], *, now: dt.datetime) -> None:
    """A new conversation's members, the starter owning it, and the news to all of them."""
    everyone = {ctx.viewer.id: ctx.viewer, **people}
    await add_participants(ctx, conv_id, everyone, owner_id=ctx.viewer.id, now=now)
    ctx.uow.emit(
        ConversationUpdated(data=ConversationChange(conversation_id=conv_id, change="created")),
        everyone,
    )


async def add_participants(
    ctx: Ctx,
    conv_id: int,
    people: dict[int, Principal],
    *,
    owner_id: int | None,
    now: dt.datetime,
) -> list[int]:
    """Add whoever is not a member yet; returns who was added. Safe against a concurrent add
    of the same person: that one insert does nothing instead of failing."""
    session = ctx.uow.messaging
    last = await session.scalar(
        select(Conversation.last_message_id).where(Conversation.id == conv_id)
    )
    rows = [
        {
            "conversation_id": conv_id,
            "user_id": uid,
            "role": "owner" if uid == owner_id else "member",
            "display_name": p.display_name[:64],
            "joined_at": now,
            "last_read_message_id": last or 0,
            "unread_count": 0,
        }
        for uid, p in people.items()
    ]
    added = await session.scalars(
        _insert(ctx)(Participant)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["conversation_id", "user_id"])
        .returning(Participant.user_id)
    )
    return sorted(added)


# --- reading ---


async def conversation_views(
    ctx: Ctx, rows: Sequence[Conversation], session: AsyncSession
) -> list[ConversationOut]:
    """Shape conversations for the viewer: participants, last message, unread count."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    last_ids = [r.last_message_id for r in rows if r.last_message_id]
    members = (
        await session.scalars(select(Participant).where(Participant.conversation_id.in_(ids)))
    ).all()
    lasts: dict[int, Message] = {}
    if last_ids:
        found = await session.scalars(select(Message).where(Message.id.in_(last_ids)))
        lasts = {m.id: m for m in found}
    lasts = await _previews_without_blocked(ctx, rows, lasts, session)
    by_conv: dict[int, list[Participant]] = {}
    for m in members:
        by_conv.setdefault(m.conversation_id, []).append(m)
    async with ctx.dbs.app.read() as app_session:
        users = await accounts.users_by_ids(app_session, {m.user_id for m in members})
    cutoff = since(ctx)
    days = retention_days(ctx.settings, ctx.viewer)
    hidden = estranged(await blocks.get_block_edges(ctx.rt, ctx.viewer.id), ctx.viewer.id)
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
                    participant_out(m, users.get(m.user_id), estranged=m.user_id in hidden)
                    for m in by_conv.get(r.id, [])
                ],
                last_message=message_out(last) if last and last.created_at >= cutoff else None,
                unread_count=mine.unread_count if mine else 0,
                last_read_message_id=mine.last_read_message_id if mine else 0,
                created_at=r.created_at,
                updated_at=r.updated_at,
                retention_days=days,
            )
        )
    return views


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


def participant_out(m: Participant, user: User | None, *, estranged: bool) -> ParticipantOut:
    """A member as the viewer sees them; across a block, without when they were last online
    or how far they have read."""
    return ParticipantOut.model_construct(
        id=m.user_id,
        username=user.username if user else None,
        display_name=user.display_name if user else m.display_name,
        avatar_url=user.avatar_url if user else None,
        role=m.role,
        last_read_message_id=0 if estranged else m.last_read_message_id,
        last_seen_at=None if estranged or user is None else user.last_seen_at,
    )


async def list_conversations(
    ctx: Ctx, *, limit: int, before: dt.datetime | None = None, kind: str | None = None
) -> list[ConversationOut]:
    await require_enabled(ctx)
    stmt = (
        select(Conversation)
        .join(Participant, Participant.conversation_id == Conversation.id)
        .where(Participant.user_id == ctx.viewer.id, Conversation.deleted_at.is_(None))
        .order_by(Conversation.updated_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(Conversation.updated_at < before)
    if kind is not None:
        stmt = stmt.where(Conversation.kind == kind)
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        rows = (await session.scalars(stmt)).all()
        return await conversation_views(ctx, rows, session)


async def get_conversation(ctx: Ctx, conversation_id: int) -> ConversationOut:
    await require_enabled(ctx)
    await access_conversation(ctx, conversation_id)
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        row = await session.get(Conversation, conversation_id)
        if row is None:
            raise _not_found()
        return (await conversation_views(ctx, [row], session))[0]


async def list_messages(
    ctx: Ctx,
    conversation_id: int,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[MessageOut]:
    """A page of history, oldest first: the newest `limit`, or those before/after an id."""
    await require_enabled(ctx)
    convo = await access_conversation(ctx, conversation_id)
    stmt = visible_messages(
        ctx.viewer.id,
        since=since(ctx),
        hidden=await hidden_senders(ctx, convo),
        conversation=convo.key,
    )
    if after_id is not None:
        stmt = stmt.where(Message.id > after_id).order_by(Message.id.asc())
    else:
        if before_id is not None:
            stmt = stmt.where(Message.id < before_id)
        stmt = stmt.order_by(Message.id.desc())
    page = stmt.limit(limit)
    rows = list(await ctx.dbs.messaging.run_read(lambda conn: conn.execute(page).all()))
    if after_id is None:
        rows.reverse()
    return [message_out(r) for r in rows]


async def direct_history(
    ctx: Ctx, other_id: int, *, before_id: int | None, after_id: int | None, limit: int
) -> list[MessageOut]:
    await require_enabled(ctx)
    conv_id = await find_direct(ctx, other_id)
    if conv_id is None:
        async with ctx.dbs.app.read() as session:
            await accounts.visible_user(session, ctx.viewer, other_id)
        return []
    return await list_messages(ctx, conv_id, before_id=before_id, after_id=after_id, limit=limit)


async def unread(ctx: Ctx) -> UnreadOut:
    await require_enabled(ctx)
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        return await unread_for(session, ctx.viewer.id)


async def unread_for(session: AsyncSession, user_id: int) -> UnreadOut:
    rows = (
        await session.execute(
            select(Participant.conversation_id, Participant.unread_count)
            .join(Conversation, Conversation.id == Participant.conversation_id)
            .where(
                Participant.user_id == user_id,
                Participant.unread_count > 0,
                Conversation.deleted_at.is_(None),
            )
        )
    ).all()
    counts = {str(r.conversation_id): r.unread_count for r in rows}
    return UnreadOut(total=sum(counts.values()), conversations=counts)


async def unread_totals(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, int]:
    ids = list(user_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Participant.user_id, func.coalesce(func.sum(Participant.unread_count), 0))
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(Participant.user_id.in_(ids), Conversation.deleted_at.is_(None))
        .group_by(Participant.user_id)
    )
    return {uid: int(total) for uid, total in rows}


async def touch(ctx: Ctx, conversation_id: int, now: dt.datetime) -> None:
    await ctx.uow.messaging.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(updated_at=now)
    )
