"""Conversations: access, start, history, unread counts (how they are listed: `views`).

Every operation gathers its facts (the switch, who is acting, memberships, blocks) and hands
them to `policy`; reads of people go to the primary database in one batched query per page.
Writes go through the request's unit of work (`ctx.uow`); facts a write depends on are read in
its transaction. Sending lives in `sending`, changes to what was sent in `changes`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import blocks, directory
from pigeon.accounts import service as accounts
from pigeon.core.errors import Invalid, NotFound
from pigeon.core.principal import Principal
from pigeon.core.schemas import built
from pigeon.messaging import policy, request_state
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import ConversationChange, ConversationUpdated
from pigeon.messaging.models import Attachment, Conversation, Message, Participant, Reaction
from pigeon.messaging.schemas import (
    QUOTE_CHARS,
    AttachmentOut,
    MessageOut,
    QuoteOut,
    ReactionOut,
    UnreadOut,
)
from pigeon.messaging.visibility import (
    blocked_by,
    visible_messages,
    visible_since,
)

MEDIA_PATH = "/api/v1/media"


def attachment_out(row: Any) -> AttachmentOut:
    """An attachment as clients see it; a removed one keeps its name, not its file."""
    removed = row.deleted_at is not None
    return AttachmentOut.model_construct(
        id=row.id,
        file_name=row.file_name,
        content_type=row.content_type,
        size=row.size,
        width=row.width,
        height=row.height,
        url=None if removed else f"{MEDIA_PATH}/{row.id}",
        thumbnail_url=None
        if removed or not row.thumbnail_key
        else f"{MEDIA_PATH}/{row.id}/thumbnail",
        removed=removed,
    )


# built once, as the page's own query is (an IN of literal values built per page leaves a
# reference cycle behind for the collector; an expanding parameter does not)
_ATTACHMENTS_OF = (
    select(Attachment)
    .where(Attachment.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(Attachment.message_id, Attachment.position, Attachment.id)
)
_REACTIONS_OF = (
    select(Reaction.message_id, Reaction.emoji, Reaction.user_id)
    .where(Reaction.message_id.in_(bindparam("ids", expanding=True)))
    .order_by(Reaction.message_id, Reaction.created_at, Reaction.user_id)
)


def attachments_by_message(conn: Connection, rows: Sequence[Any]) -> dict[int, list[AttachmentOut]]:
    """The attachments of these messages, in order, looked up only for those that have some."""
    ids = [i for i, n, gone in by_position(rows, _ATTACHED) if n and gone is None]
    if not ids:
        return {}
    found: dict[int, list[AttachmentOut]] = {}
    for a in conn.execute(_ATTACHMENTS_OF, {"ids": ids}).all():
        found.setdefault(a.message_id, []).append(attachment_out(a))
    return found


def reactions_by_message(conn: Connection, rows: Sequence[Any]) -> dict[int, list[ReactionOut]]:
    """The reactions on these messages (by emoji, in the order first used), looked up only for
    those that have some."""
    ids = [i for i, n, gone in by_position(rows, _REACTED) if n and gone is None]
    if not ids:
        return {}
    return reactions_of(conn.execute(_REACTIONS_OF, {"ids": ids}).all())


def reactions_of(rows: Iterable[Any]) -> dict[int, list[ReactionOut]]:
    """(message_id, emoji, user_id) rows, oldest first, as each message's reactions."""
    grouped: dict[int, dict[str, list[int]]] = {}
    for message_id, emoji, user_id in rows:
        grouped.setdefault(message_id, {}).setdefault(emoji, []).append(user_id)
    return {
        mid: [ReactionOut(emoji=e, count=len(users), user_ids=users) for e, users in by.items()]
        for mid, by in grouped.items()
    }


def messages_out(conn: Connection, rows: Sequence[Any]) -> list[MessageOut]:
    """Messages as clients see them, with their attachments and reactions (one query each for
    the lot, and none where no message has any)."""
    files = attachments_by_message(conn, rows)
    reactions = reactions_by_message(conn, rows)
    return [
        message_from(c, files.get(c[0], ()), reactions.get(c[0], ()))
        for c in by_position(rows, _MESSAGE_COLUMNS)
    ]


async def messages_out_in(session: AsyncSession, rows: Sequence[Any]) -> list[MessageOut]:
    """`messages_out` on a session's connection."""
    return await session.run_sync(lambda s: messages_out(s.connection(), rows))


def message_out(
    row: Any,
    attachments: Iterable[AttachmentOut] = (),
    reactions: Iterable[ReactionOut] = (),
) -> MessageOut:
    """A message as clients see it: a deleted one keeps its place, without its text or files."""
    return message_from(by_position([row], _MESSAGE_COLUMNS)[0], attachments, reactions)


def message_from(
    columns: tuple[Any, ...],
    attachments: Iterable[AttachmentOut] = (),
    reactions: Iterable[ReactionOut] = (),
) -> MessageOut:
    """`message_out` of a message row's columns (`_MESSAGE_COLUMNS`, by position)."""
    mid, conversation_id, sender_id, body, created_at, edited_at, deleted_at, reply_to_id, cmid = (
        columns
    )
    deleted = deleted_at is not None
    return built(
        MessageOut,
        {
            "id": mid,
            "conversation_id": conversation_id,
            "sender_id": sender_id,
            "body": "" if deleted else body,
            "created_at": created_at,
            "edited_at": edited_at,
            "deleted": deleted,
            "reply_to_id": reply_to_id,
            "reply_to": None,
            "attachments": [] if deleted else list(attachments),
            "reactions": [] if deleted else list(reactions),
            "client_msg_id": cmid,
        },
    )


_MESSAGE_COLUMNS = (
    *("id", "conversation_id", "sender_id", "body", "created_at", "edited_at", "deleted_at"),
    *("reply_to_id", "client_msg_id"),
)
_ATTACHED = ("id", "attachment_count", "deleted_at")
_REACTED = ("id", "reaction_count", "deleted_at")
_takers: dict[tuple[tuple[str, ...], tuple[str, ...]], Callable[[Any], tuple[Any, ...]]] = {}


def by_position(rows: Sequence[Any], names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """These columns (two or more) of each row of one result, by position: a row's columns
    by name cost thirty times as much, and its list of names is built anew on every ask, which
    counted for most of a history page's time. Objects that are not rows are read by name."""
    if not rows:
        return []
    fields = getattr(rows[0], "_fields", None)
    if fields is None:
        return [tuple(getattr(r, name) for name in names) for r in rows]
    take = _takers.get((fields, names))
    if take is None:
        take = operator.itemgetter(*(fields.index(name) for name in names))
        _takers[(fields, names)] = take
    return [take(r) for r in rows]


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    role: str
    last_read_message_id: int
    unread_count: int
    cleared_to_id: int = 0  # what they removed for themselves, up to this message
    marked_unread: bool = False
    pending: bool = False  # a message request they have not accepted (`request_state`)


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
    """Reading: messaging on or read-only, and the reader not suspended."""
    policy.check_enabled(await ctx.rt.switches.messaging_enabled())
    policy.check_active(ctx.viewer, ctx.rt.clock.now())


async def require_writable(ctx: Ctx) -> None:
    """Writing something new (a message, an edit, a reaction, a conversation, a group change,
    an upload, typing): messaging on, not read-only, the writer not suspended."""
    mode = await ctx.rt.switches.messaging_mode()
    policy.check_enabled(mode != "off")
    policy.check_writable(mode)
    policy.check_active(ctx.viewer, ctx.rt.clock.now())


_CONVO = (
    select(
        Conversation.kind,
        Conversation.title,
        Conversation.created_by,
        Participant.user_id,
        Participant.role,
        Participant.last_read_message_id,
        Participant.unread_count,
        Participant.cleared_to_id,
        Participant.marked_unread,
        Participant.request_pending,
    )
    .join(Participant, Participant.conversation_id == Conversation.id)
    .where(Conversation.deleted_at.is_(None))
)


def _convo(rows: Sequence[Row[Any]], conversation_id: int) -> Convo | None:
    if not rows:
        return None
    first = rows[0]
    members = {
        r.user_id: Member(
            r.user_id,
            r.role,
            r.last_read_message_id,
            r.unread_count,
            r.cleared_to_id,
            r.marked_unread,
            r.request_pending,
        )
        for r in rows
    }
    return Convo(conversation_id, first.kind, first.title, first.created_by, members)


_CONVO_BY_ID = _CONVO.where(Conversation.id == bindparam("cid"))


def _fetch_convo(conn: Connection, conversation_id: int) -> Convo | None:
    rows = conn.execute(_CONVO_BY_ID, {"cid": conversation_id}).all()
    return _convo(rows, conversation_id)


async def load_convo(session: AsyncSession, conversation_id: int) -> Convo | None:
    rows = (await session.execute(_CONVO_BY_ID, {"cid": conversation_id})).all()
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


async def message_rule(ctx: Ctx) -> Callable[[int], Select[tuple[Message]]]:
    """The query for one message the viewer can see now (its conversation, their window,
    blocks in groups, not deleted). Everything reached through a message (reports,
    reactions, its files) is reached through this, in `access_message` or in a read of its
    own."""
    hidden, oldest = await blocked_senders(ctx), since(ctx)

    def rule(message_id: int) -> Select[tuple[Message]]:
        return visible_messages(
            ctx.viewer.id, since=oldest, hidden=hidden, include_deleted=False
        ).where(Message.id == message_id)

    return rule


async def access_message(ctx: Ctx, message_id: int) -> Message:
    """The message, if the viewer can see it now; otherwise not found, with no hint either
    way."""
    stmt = (await message_rule(ctx))(message_id)
    async with ctx.uow.read(ctx.dbs.messaging) as session:
        row = await session.scalar(stmt)
    if row is None:
        raise NotFound("No such message.", code="message_not_found")
    return row


async def unseen_by(ctx: Ctx, kind: str, sender_id: int) -> set[int]:
    """Who, in a group, blocked the sender: they neither see nor count that sender's messages."""
    if kind != "group":
        return set()
    return policy.blockers_of(sender_id, await blocks.get_block_edges(ctx.rt, sender_id))


async def hidden_senders(ctx: Ctx, convo: Convo) -> set[int]:
    """The senders hidden from the viewer in this conversation."""
    return await blocked_senders(ctx) if convo.kind == "group" else set()


def since(ctx: Ctx) -> dt.datetime:
    return visible_since(ctx.settings, ctx.viewer, ctx.rt.clock.now())


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
    """The dialect's INSERT with ON CONFLICT; each dialect's module loads only where it runs."""
    if ctx.dbs.messaging.dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


async def start_direct(ctx: Ctx, other_id: int) -> tuple[int, bool]:
    """The direct conversation with `other_id`: the existing one, or a new one (rule 5)."""
    await require_writable(ctx)
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
    now = ctx.rt.clock.now()
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
    async with ctx.uow.read(ctx.dbs.messaging) as read:
        knows_me = await request_state.has_written_to(read, other_id, ctx.viewer.id)
    pending = request_state.request_for(
        "direct", ctx.viewer.id, people, {other_id} if knows_me else set()
    )
    await _open(ctx, int(conv_id), people, now=now, pending=pending)
    return int(conv_id), True


async def start_group(ctx: Ctx, member_ids: Sequence[int], title: str | None) -> int:
    await require_writable(ctx)
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
    now = ctx.rt.clock.now()
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


async def _open(
    ctx: Ctx,
    conv_id: int,
    people: dict[int, Principal],
    *,
    now: dt.datetime,
    pending: set[int] | frozenset[int] = frozenset(),
) -> None:
    """A new conversation's members, the starter owning it, and the news to all of them;
    `pending`: those for whom it is a message request."""
    everyone = {ctx.viewer.id: ctx.viewer, **people}
    await add_participants(ctx, conv_id, everyone, owner_id=ctx.viewer.id, now=now, pending=pending)
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
    pending: set[int] | frozenset[int] = frozenset(),
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
            "request_pending": uid in pending,
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
    hidden = await hidden_senders(ctx, convo)
    cleared = convo.members[ctx.viewer.id].cleared_to_id
    upto = ctx.rt.stream.upto()
    order: Literal["latest", "before", "after"] = (
        "after" if after_id is not None else "before" if before_id is not None else "latest"
    )
    page, replies = _history(bool(hidden), bool(cleared), upto is not None, order)
    values = {
        "since": since(ctx),
        "cid": convo.id,
        "hidden": sorted(hidden),
        "cleared": cleared,
        "upto": upto,
        "after": after_id,
        "before": before_id,
        "limit": limit,
    }

    def read(conn: Connection) -> list[MessageOut]:
        rows = list(conn.execute(page, values).all())
        if after_id is None:
            rows.reverse()
        return with_quotes(
            messages_out(conn, rows),
            lambda wanted: conn.execute(replies, {**values, "wanted": sorted(wanted)}),
        )

    return await ctx.dbs.messaging.run_read(read)


@functools.cache
def _history(
    hides: bool, cleared: bool, capped: bool, order: Literal["latest", "before", "after"]
) -> tuple[Select[tuple[Message]], Select[tuple[Message]]]:
    """A history page's query and its replies' look-up, for one shape of the rules that apply
    (senders hidden, a clear mark, the stream's cap) and of the page (latest, before, after
    an id); shaped once, with parameters for the values, so that a page is not built and
    keyed again each time (a quarter of its CPU)."""
    base = visible_messages(
        0,  # not read: the conversation is given
        since=bindparam("since"),
        hidden=bindparam("hidden", expanding=True) if hides else (),
        conversation=(bindparam("cid"), "group"),
        cleared_to_id=bindparam("cleared") if cleared else 0,
        upto=bindparam("upto") if capped else None,
    )
    if order == "after":
        page = base.where(Message.id > bindparam("after")).order_by(Message.id.asc())
    else:
        narrowed = base.where(Message.id < bindparam("before")) if order == "before" else base
        page = narrowed.order_by(Message.id.desc())
    replies = base.where(Message.id.in_(bindparam("wanted", expanding=True)))
    return page.limit(bindparam("limit")), replies


def quote_out(
    message_id: int, sender_id: int, body: str, *, attachments: int, deleted: bool
) -> QuoteOut:
    """What a reply shows of its target: the first line of its text, or that it is gone."""
    if deleted:
        return QuoteOut(id=message_id, available=True, sender_id=sender_id, deleted=True)
    line = next((part.strip() for part in body.splitlines() if part.strip()), "")
    if len(line) > QUOTE_CHARS:
        line = line[: QUOTE_CHARS - 1].rstrip() + "…"
    return QuoteOut(
        id=message_id, available=True, sender_id=sender_id, excerpt=line, attachments=attachments
    )


def with_quotes(
    messages: list[MessageOut], visible: Callable[[set[int]], Iterable[Any]]
) -> list[MessageOut]:
    """Each reply with the message it answers, looked up among those the reader may see
    (`visible`: rows of the page's own query, narrowed to the ids asked for): one query for
    the page, none without replies."""
    wanted = {m.reply_to_id for m in messages if m.reply_to_id is not None and not m.deleted}
    if not wanted:
        return messages
    found = {
        r.id: quote_out(
            r.id,
            r.sender_id,
            r.body,
            attachments=r.attachment_count,
            deleted=r.deleted_at is not None,
        )
        for r in visible(wanted)
    }
    for m in messages:
        if m.reply_to_id is not None and not m.deleted:
            m.reply_to = found.get(m.reply_to_id) or QuoteOut(id=m.reply_to_id, available=False)
    return messages


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
    """The badge: unread counts of the inbox (message requests stay out of it), the total
    without muted ones, and how many requests wait."""
    rows = (await session.execute(_UNREAD, {"viewer": user_id})).all()
    counts = {str(r.conversation_id): r.unread_count for r in rows}
    total = sum(r.unread_count for r in rows if not r.muted)  # muted: no badge
    waiting = await session.scalar(_REQUESTS_WAITING, {"viewer": user_id})
    return UnreadOut(total=total, conversations=counts, requests=int(waiting or 0))


# built once: a negated clause built at each call leaves a reference cycle behind (each
# connection's hello reads the badge), for the collector to find
_NOT_REMOVED = ~and_(
    Participant.removed_at.is_not(None), Conversation.updated_at <= Participant.removed_at
)


def not_removed() -> Any:
    """The viewer's row is not one they removed for themselves (or declined) with nothing new
    since."""
    return _NOT_REMOVED


# the badge's two reads (`unread_for`), shaped once
_UNREAD = (
    select(Participant.conversation_id, Participant.unread_count, Participant.muted)
    .join(Conversation, Conversation.id == Participant.conversation_id)
    .where(
        Participant.user_id == bindparam("viewer"),
        Participant.unread_count > 0,
        Participant.request_pending.is_(False),
        Conversation.deleted_at.is_(None),
    )
)
_REQUESTS_WAITING = (
    select(func.count())
    .select_from(Participant)
    .join(Conversation, Conversation.id == Participant.conversation_id)
    .where(
        Participant.user_id == bindparam("viewer"),
        Participant.request_pending.is_(True),
        Conversation.deleted_at.is_(None),
        _NOT_REMOVED,
    )
)


async def unread_totals(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, int]:
    ids = list(user_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(Participant.user_id, func.coalesce(func.sum(Participant.unread_count), 0))
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(Participant.user_id.in_(ids), Conversation.deleted_at.is_(None))
        .where(Participant.muted.is_(False), Participant.request_pending.is_(False))
        .group_by(Participant.user_id)
    )
    return {uid: int(total) for uid, total in rows}


async def touch(ctx: Ctx, conversation_id: int, now: dt.datetime) -> None:
    await ctx.uow.messaging.execute(
        update(Conversation).where(Conversation.id == conversation_id).values(updated_at=now)
    )
