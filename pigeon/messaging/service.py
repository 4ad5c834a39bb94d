"""Conversations and messages: start, list, read, send, edit, delete, mark read.

Every operation gathers its facts (the switch, who is acting, memberships, blocks) and hands them
to `policy`; reads of people go to the primary database in one batched query per page.
The send path is built for throughput: the checks read outside the write transaction, and the
write itself is one insert and two updates, whatever the size of the conversation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import service as accounts
from pigeon.accounts.service import Principal
from pigeon.admin import service as admin
from pigeon.core.clock import clock
from pigeon.core.db import Database, Databases
from pigeon.core.errors import Invalid, NotFound
from pigeon.core.events import emit
from pigeon.messaging import policy
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.settings import Settings

P = Participant.__table__
M = Message.__table__
C = Conversation.__table__


@dataclasses.dataclass(frozen=True, slots=True)
class Ctx:
    """What every messaging operation needs: the databases, the settings, the actor."""

    dbs: Databases
    settings: Settings
    viewer: Principal


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    role: str
    last_read_message_id: int
    unread_count: int


@dataclasses.dataclass(frozen=True, slots=True)
class Convo:
    id: int
    kind: str
    title: str | None
    created_by: int
    members: dict[int, Member]

    def other_ids(self, user_id: int) -> list[int]:
        return [uid for uid in self.members if uid != user_id]


def _insert(db: Database, table: Any) -> Any:
    return (sqlite.insert if db.is_sqlite else postgresql.insert)(table)


def message_dict(row: Row[Any] | Message | dict[str, Any]) -> dict[str, Any]:
    r = row if isinstance(row, dict) else row._asdict() if isinstance(row, Row) else vars(row)
    deleted = r["deleted_at"] is not None
    return {
        "id": r["id"],
        "conversation_id": r["conversation_id"],
        "sender_id": r["sender_id"],
        "body": "" if deleted else r["body"],
        "created_at": r["created_at"],
        "edited_at": r["edited_at"],
        "deleted": deleted,
        "reply_to_id": r["reply_to_id"],
        "attachments": [],
        "reactions": [],
        "client_msg_id": r["client_msg_id"],
    }


# --- facts ---


async def require_enabled(ctx: Ctx) -> None:
    policy.check_enabled(await admin.messaging_enabled(ctx.dbs.app))
    policy.check_active(ctx.viewer)


def _fetch_convo(conn: Connection, conversation_id: int) -> Convo | None:
    rows = conn.execute(
        select(
            C.c.kind,
            C.c.title,
            C.c.created_by,
            P.c.user_id,
            P.c.role,
            P.c.last_read_message_id,
            P.c.unread_count,
        )
        .select_from(C.join(P, P.c.conversation_id == C.c.id))
        .where(C.c.id == conversation_id, C.c.deleted_at.is_(None))
    ).all()
    if not rows:
        return None
    first = rows[0]
    members = {
        r.user_id: Member(r.user_id, r.role, r.last_read_message_id, r.unread_count) for r in rows
    }
    return Convo(conversation_id, first.kind, first.title, first.created_by, members)


async def load_convo(session: AsyncSession, conversation_id: int) -> Convo | None:
    return await session.run_sync(lambda s: _fetch_convo(s.connection(), conversation_id))


async def access_conversation(ctx: Ctx, conversation_id: int) -> Convo:
    """The conversation, if the viewer takes part in it; not found and not allowed look alike."""
    convo = await ctx.dbs.messaging.run_read(lambda conn: _fetch_convo(conn, conversation_id))
    if convo is None or ctx.viewer.id not in convo.members:
        raise NotFound("No such conversation.", code="conversation_not_found")
    return convo


def retention_days(settings: Settings, who: Principal) -> int:
    return settings.retention_days(who.tier, who.role)


def visible_since(ctx: Ctx) -> dt.datetime:
    return policy.retention_cutoff(retention_days(ctx.settings, ctx.viewer), clock.now())


async def blocked_senders(ctx: Ctx) -> set[int]:
    """Whom the viewer blocked: in groups, their messages are not shown to the viewer (rule 4).
    History, previews, search and live catch-up all hide these, in group conversations only."""
    edges = await accounts.get_block_edges(ctx.dbs.app, ctx.viewer.id)
    return {blocked for blocker, blocked in edges if blocker == ctx.viewer.id}


async def unseen_by(dbs: Databases, kind: str, sender_id: int) -> set[int]:
    """Who, in a group, blocked the sender: they neither see nor count that sender's messages."""
    if kind != "group":
        return set()
    return policy.blockers_of(sender_id, await accounts.get_block_edges(dbs.app, sender_id))


async def hidden_senders(ctx: Ctx, convo: Convo) -> set[int]:
    """The senders hidden from the viewer in this conversation."""
    return await blocked_senders(ctx) if convo.kind == "group" else set()


# --- starting conversations ---


def direct_key(a: int, b: int) -> str:
    lo, hi = sorted((a, b))
    return f"{lo}:{hi}"


async def _check_people(ctx: Ctx, user_ids: Iterable[int]) -> dict[int, Principal]:
    """Everyone exists, shares a community with the viewer, and no block stands between."""
    ids = set(user_ids) - {ctx.viewer.id}
    async with ctx.dbs.app.read() as session:
        people = await accounts.principals(session, ids)
        missing = ids - people.keys()
        if missing:
            raise NotFound(f"No such user: {min(missing)}.", code="user_not_found")
        policy.check_same_community(ctx.viewer, people.values())
        blocks = await accounts.blocks_among(session, ctx.viewer.id, ids)
    policy.check_not_blocked(ctx.viewer.id, ids, blocks)
    for person in people.values():
        if not person.is_active:
            raise NotFound(f"No such user: {person.id}.", code="user_not_found")
    return people


async def find_direct(ctx: Ctx, other_id: int) -> int | None:
    return (await find_directs(ctx, [other_id])).get(other_id)


async def find_directs(ctx: Ctx, other_ids: Iterable[int]) -> dict[int, int]:
    """{other person: our direct conversation} for those we have one with; one query."""
    keys = {direct_key(ctx.viewer.id, uid): uid for uid in other_ids}
    if not keys:
        return {}
    async with ctx.dbs.messaging.read() as session:
        rows = await session.execute(
            select(C.c.direct_key, C.c.id).where(C.c.direct_key.in_(keys), C.c.deleted_at.is_(None))
        )
        return {keys[key]: conv_id for key, conv_id in rows}


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
        async with ctx.dbs.app.read() as session:
            blocks = await accounts.blocks_among(session, ctx.viewer.id, [other_id])
        policy.check_not_blocked(ctx.viewer.id, [other_id], blocks)
        return existing, False
    policy.check_can_start(ctx.viewer)
    people = await _check_people(ctx, [other_id])
    db = ctx.dbs.messaging
    now = clock.now()
    async with db.write() as session:
        conv_id = await session.scalar(
            _insert(db, C)
            .values(
                kind="direct",
                title=None,
                created_by=ctx.viewer.id,
                direct_key=direct_key(ctx.viewer.id, other_id),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["direct_key"])
            .returning(C.c.id)
        )
        if conv_id is None:  # the other person started it at the same moment
            conv_id = await session.scalar(
                select(C.c.id).where(C.c.direct_key == direct_key(ctx.viewer.id, other_id))
            )
            return int(conv_id), False
        await _open(session, ctx, conv_id, people, now=now)
    return conv_id, True


async def _open(
    session: AsyncSession,
    ctx: Ctx,
    conv_id: int,
    people: dict[int, Principal],
    *,
    now: dt.datetime,
) -> None:
    """A new conversation's members, the starter owning it, and the news to all of them."""
    await _add_participants(
        session, conv_id, {ctx.viewer.id: ctx.viewer, **people}, owner_id=ctx.viewer.id, now=now
    )
    emit(
        session,
        "conversation.updated",
        {"conversation_id": conv_id, "change": "created"},
        user_ids=[ctx.viewer.id, *people],
    )


async def _add_participants(
    session: AsyncSession,
    conv_id: int,
    people: dict[int, Principal],
    *,
    owner_id: int | None,
    now: dt.datetime,
) -> None:
    last = await session.scalar(select(C.c.last_message_id).where(C.c.id == conv_id)) or 0
    await session.execute(
        P.insert(),
        [
            {
                "conversation_id": conv_id,
                "user_id": uid,
                "role": "owner" if uid == owner_id else "member",
                "display_name": p.display_name[:64],
                "joined_at": now,
                "last_read_message_id": last,
                "unread_count": 0,
            }
            for uid, p in people.items()
        ],
    )


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
    people = await _check_people(ctx, ids)
    now = clock.now()
    async with ctx.dbs.messaging.write() as session:
        conv_id = await session.scalar(
            C.insert()
            .values(
                kind="group",
                title=title,
                created_by=ctx.viewer.id,
                direct_key=None,
                created_at=now,
                updated_at=now,
            )
            .returning(C.c.id)
        )
        await _open(session, ctx, conv_id, people, now=now)
    return int(conv_id)


# --- reading ---


async def conversation_views(ctx: Ctx, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Shape conversation rows for the viewer: participants, last message, unread count."""
    if not rows:
        return []
    ids = [r.id for r in rows]
    last_ids = [r.last_message_id for r in rows if r.last_message_id]
    async with ctx.dbs.messaging.read() as session:
        members = (await session.execute(select(P).where(P.c.conversation_id.in_(ids)))).all()
        lasts = (
            {m.id: m for m in (await session.execute(select(M).where(M.c.id.in_(last_ids)))).all()}
            if last_ids
            else {}
        )
    lasts = await _previews_without_blocked(ctx, rows, lasts)
    by_conv: dict[int, list[Row[Any]]] = {}
    for m in members:
        by_conv.setdefault(m.conversation_id, []).append(m)
    async with ctx.dbs.app.read() as session:
        users = await accounts.users_by_ids(session, {m.user_id for m in members})
    since = visible_since(ctx)
    days = retention_days(ctx.settings, ctx.viewer)
    views = []
    for r in rows:
        me = next((m for m in by_conv.get(r.id, []) if m.user_id == ctx.viewer.id), None)
        last = lasts.get(r.last_message_id)
        views.append(
            {
                "id": r.id,
                "kind": r.kind,
                "title": r.title,
                "created_by": r.created_by,
                "participants": [
                    participant_dict(m, users.get(m.user_id)) for m in by_conv.get(r.id, [])
                ],
                "last_message": message_dict(last) if last and last.created_at >= since else None,
                "unread_count": me.unread_count if me else 0,
                "last_read_message_id": me.last_read_message_id if me else 0,
                "created_at": r.created_at,
                "updated_at": r.updated_at,
                "retention_days": days,
            }
        )
    return views


async def _previews_without_blocked(
    ctx: Ctx, rows: Sequence[Row[Any]], lasts: dict[int, Any]
) -> dict[int, Any]:
    """In groups, a blocker's preview is the latest message not from someone they blocked."""
    groups = [r for r in rows if r.kind == "group" and r.last_message_id in lasts]
    if not groups:
        return lasts
    blocked = await blocked_senders(ctx)
    stale = [r for r in groups if lasts[r.last_message_id].sender_id in blocked]
    if not stale:
        return lasts
    lasts = dict(lasts)
    async with ctx.dbs.messaging.read() as session:
        for r in stale:  # rare: one query per conversation whose last word was a blocked one
            lasts[r.last_message_id] = (
                await session.execute(
                    select(M)
                    .where(M.c.conversation_id == r.id, M.c.sender_id.not_in(blocked))
                    .order_by(M.c.id.desc())
                    .limit(1)
                )
            ).first()
    return lasts


def participant_dict(m: Row[Any], user: Any) -> dict[str, Any]:
    return {
        "id": m.user_id,
        "username": user.username if user else None,
        "display_name": user.display_name if user else m.display_name,
        "avatar_url": user.avatar_url if user else None,
        "role": m.role,
        "last_read_message_id": m.last_read_message_id,
        "last_seen_at": user.last_seen_at if user else None,
    }


async def list_conversations(
    ctx: Ctx, *, limit: int, before: dt.datetime | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    await require_enabled(ctx)
    stmt = (
        select(C)
        .select_from(C.join(P, P.c.conversation_id == C.c.id))
        .where(P.c.user_id == ctx.viewer.id, C.c.deleted_at.is_(None))
        .order_by(C.c.updated_at.desc(), C.c.id.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(C.c.updated_at < before)
    if kind is not None:
        stmt = stmt.where(C.c.kind == kind)
    async with ctx.dbs.messaging.read() as session:
        rows = (await session.execute(stmt)).all()
    return await conversation_views(ctx, rows)


async def get_conversation(ctx: Ctx, conversation_id: int) -> dict[str, Any]:
    await require_enabled(ctx)
    await access_conversation(ctx, conversation_id)
    async with ctx.dbs.messaging.read() as session:
        rows = (await session.execute(select(C).where(C.c.id == conversation_id))).all()
    return (await conversation_views(ctx, rows))[0]


async def list_messages(
    ctx: Ctx,
    conversation_id: int,
    *,
    before_id: int | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """A page of history, oldest first: the newest `limit`, or those before/after an id."""
    await require_enabled(ctx)
    convo = await access_conversation(ctx, conversation_id)
    hidden = await hidden_senders(ctx, convo)
    stmt = select(M).where(
        M.c.conversation_id == conversation_id, M.c.created_at >= visible_since(ctx)
    )
    if hidden:
        stmt = stmt.where(M.c.sender_id.not_in(hidden))
    if after_id is not None:
        stmt = stmt.where(M.c.id > after_id).order_by(M.c.id.asc())
    else:
        if before_id is not None:
            stmt = stmt.where(M.c.id < before_id)
        stmt = stmt.order_by(M.c.id.desc())
    rows = await ctx.dbs.messaging.run_read(lambda conn: conn.execute(stmt.limit(limit)).all())
    if after_id is None:
        rows.reverse()
    return [message_dict(r) for r in rows]


async def direct_history(
    ctx: Ctx, other_id: int, *, before_id: int | None, after_id: int | None, limit: int
) -> list[dict[str, Any]]:
    await require_enabled(ctx)
    conv_id = await find_direct(ctx, other_id)
    if conv_id is None:
        async with ctx.dbs.app.read() as session:
            await accounts.visible_user(session, ctx.viewer, other_id)
        return []
    return await list_messages(ctx, conv_id, before_id=before_id, after_id=after_id, limit=limit)


async def unread(ctx: Ctx) -> dict[str, Any]:
    await require_enabled(ctx)
    async with ctx.dbs.messaging.read() as session:
        return await unread_for(session, ctx.viewer.id)


async def unread_for(session: AsyncSession, user_id: int) -> dict[str, Any]:
    rows = (
        await session.execute(
            select(P.c.conversation_id, P.c.unread_count)
            .select_from(P.join(C, C.c.id == P.c.conversation_id))
            .where(P.c.user_id == user_id, P.c.unread_count > 0, C.c.deleted_at.is_(None))
        )
    ).all()
    counts = {str(r.conversation_id): r.unread_count for r in rows}
    return {"total": sum(counts.values()), "conversations": counts}


async def unread_totals(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, int]:
    ids = list(user_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(P.c.user_id, func.coalesce(func.sum(P.c.unread_count), 0))
        .select_from(P.join(C, C.c.id == P.c.conversation_id))
        .where(P.c.user_id.in_(ids), C.c.deleted_at.is_(None))
        .group_by(P.c.user_id)
    )
    return {uid: int(total) for uid, total in rows}
