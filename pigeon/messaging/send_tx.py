"""The send's transaction: its rules and rows, written once, and the two ways it is run.

`apply_send` is the whole write of one message as synchronous SQLAlchemy Core over a
connection: membership checked inside the transaction, idempotency by `client_msg_id`, the
community boundary and the block rule (from the cached people and blocks), the reply target,
the attachments (the sender's own unused uploads), one insert, the unread counts, the
conversation's last message, the recipients' new totals.
How it runs is chosen once, at start-up (`make_send_path`):

- SQLite: one writer thread takes every send that is waiting and runs them in one transaction
  (a refused send writes nothing, so it does not disturb the others), and commits once: one
  fsync per batch, and a send is acknowledged only once its batch is on disk (group commit).
  Its hot statements are compiled once and run on the connection's cursor (`db.Prepared`):
  through the async driver each statement would be a hop to a worker thread, and through a
  Connection the per-statement machinery costs several times the statement.
- PostgreSQL: in the request's unit of work, through `run_sync`, concurrently from every
  process. Sends into one conversation take turns on its row (`FOR UPDATE`), so its ids, its
  last message and a retry's `client_msg_id` look-up follow commit order; sends to one person
  take turns on an advisory lock of theirs, taken in id order after the conversation's, so the
  unread totals their events carry are exact and arrive in order. Sends that share neither
  run side by side. Once it has its turns, the send reserves its place in the message stream,
  before its id is handed out (`core.stream`: no client sees its id before every lower one
  has settled, so resuming from the highest id seen skips nothing). The same `client_msg_id`
  reused at once in another conversation meets the unique index (`ON CONFLICT DO NOTHING`)
  and is told it is taken.
  A send whose unit of work has not written the messaging database is first tried at once
  (`InTransaction._at_once`): the send checked by `admit` as above against the members this
  process remembers (`Members`; read by a statement of their own where it does not), its
  place reserved, then one statement (`pigeon_send_at_once`) that takes the same turns in the
  same order, but only if each is free, checks the members are still those, and writes as
  above, committing by itself: one round trip instead of four. Where a turn is taken (or the
  members changed) it writes nothing, the place is given back, and the send is made in the
  transaction as above, waiting for its turns with no place held.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import logging
import queue
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    case,
    create_engine,
    false,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine, Row

from pigeon.core import metrics
from pigeon.core.db import Database, Prepared, sqlite_pragmas
from pigeon.core.errors import AppError, Invalid, NotFound, log_failure
from pigeon.core.principal import Principal
from pigeon.core.uow import UnitOfWork
from pigeon.messaging import policy
from pigeon.messaging.models import Attachment, Conversation, Message, Participant

log = logging.getLogger("pigeon.sends")
MAX_BATCH = 256
_PERSON_LOCKS = 0x5047  # PostgreSQL advisory locks (class, user id): one person's sends in turn
_ALONE_KEY = 0x50474D53  # held shared by every placed send, alone by one without a place


@dataclasses.dataclass(slots=True)
class SendOp:
    conversation_id: int
    sender: Principal
    body: str
    client_msg_id: str | None
    reply_to_id: int | None
    now: dt.datetime
    edges: frozenset[tuple[int, int]]  # every (blocker, blocked) pair involving the sender
    # who the other members are (their communities), from the people cache: the send reads
    # nothing of the primary database; what the cache lacks is fetched and the send retried
    known: Callable[[int], Principal | None]
    read_people: Callable[[list[int]], Awaitable[object]]  # into the cache `known` reads
    attachment_ids: tuple[int, ...] = ()
    skip_unknown: bool = False  # whoever is still unknown, once read, has no account any more

    @property
    def sender_id(self) -> int:
        return self.sender.id

    async def learn(self, user_ids: list[int]) -> None:
        """Read the people the cache lacked (`PeopleNeeded`): PostgreSQL's send as it checks
        the send before holding a place (`_admit_learning`); SQLite's before its retry, as its
        writer thread cannot wait for a read."""
        await self.read_people(user_ids)
        self.skip_unknown = True


class PeopleNeeded(AppError):
    """The send needs people the cache does not hold (yet); fetch them and send again."""

    def __init__(self, user_ids: list[int]) -> None:
        super().__init__("Some people are not known yet.", code="people_needed")
        self.user_ids = user_ids


@dataclasses.dataclass(slots=True)
class SendResult:
    row: Row[Any]  # the message's columns
    created: bool
    recipients: list[int]  # who gets it live (the sender's other devices aside)
    totals: dict[int, int]  # each recipient's new unread total
    attachments: Sequence[Any] = ()  # the message's attachment rows, in order
    # message requests: recipients who have not accepted the conversation (their badge does
    # not count it), and whether this send accepted the sender's own (a reply accepts)
    requested: frozenset[int] = frozenset()
    accepted: bool = False


# --- the statements, built once ---

_MEMBERS = (
    select(Conversation.kind, Participant.user_id, Participant.request_pending)
    .join(Participant, Participant.conversation_id == Conversation.id)
    .where(Conversation.id == bindparam("cid"), Conversation.deleted_at.is_(None))
)
# PostgreSQL, one round trip: the conversation's row locked, then its other members' turns
# in id order, and the sender's message with this client_msg_id, if any (`take_turns`)
_MEMBERS_IN_TURN = text(
    "WITH m AS MATERIALIZED (SELECT conversation.kind, participant.user_id,"
    " participant.request_pending FROM conversation JOIN participant"
    " ON participant.conversation_id = conversation.id"
    " WHERE conversation.id = CAST(:cid AS bigint) AND conversation.deleted_at IS NULL"
    " FOR UPDATE OF conversation),"
    " turns AS MATERIALIZED (SELECT pg_advisory_xact_lock(CAST(:space AS integer), o.user_id)"
    " FROM (SELECT user_id FROM m WHERE user_id <> CAST(:sid AS integer) ORDER BY user_id) AS o)"
    " SELECT m.kind, m.user_id, m.request_pending, (SELECT count(*) FROM turns) AS turns,"
    " (SELECT id FROM message WHERE sender_id = CAST(:sid AS integer)"
    " AND client_msg_id = CAST(:cmid AS varchar)) AS original FROM m"
)
# PostgreSQL's send at once (`InTransaction._at_once`): what the send is checked against, read
# without a transaction and without a turn; its write (`pigeon_send_at_once`, a function made
# by a migration) takes the turns and finds out whether the members are still these
_MEMBERS_AT_ONCE = text(
    "SELECT conversation.kind, participant.user_id, participant.request_pending,"
    " (SELECT id FROM message WHERE sender_id = CAST(:sid AS integer)"
    " AND client_msg_id = CAST(:cmid AS varchar)) AS original,"
    " (SELECT conversation_id FROM message WHERE id = CAST(:rid AS bigint)) AS reply_in"
    " FROM conversation JOIN participant ON participant.conversation_id = conversation.id"
    " WHERE conversation.id = CAST(:cid AS bigint) AND conversation.deleted_at IS NULL"
    " ORDER BY participant.user_id"
)
_BY_CLIENT_ID = select(Message).where(
    Message.sender_id == bindparam("sid"), Message.client_msg_id == bindparam("cmid")
)
_REPLY_TARGET = select(Message.conversation_id).where(Message.id == bindparam("rid"))
_UPLOADS = select(
    Attachment.id, Attachment.uploader_id, Attachment.message_id, Attachment.deleted_at
).where(Attachment.id.in_(bindparam("ids", expanding=True)))
_ATTACH = (
    update(Attachment)
    .where(Attachment.id == bindparam("aid"), Attachment.message_id.is_(None))
    .values(
        message_id=bindparam("mid"), conversation_id=bindparam("cid"), position=bindparam("pos")
    )
)
_ATTACHED = (
    select(Attachment)
    .where(Attachment.message_id == bindparam("mid"))
    .order_by(Attachment.position, Attachment.id)
)
_TOUCH = (
    update(Conversation)
    .where(Conversation.id == bindparam("cid"))
    .values(last_message_id=bindparam("mid"), updated_at=bindparam("now"))
)
_TOTALS = (
    select(Participant.user_id, func.coalesce(func.sum(Participant.unread_count), 0))
    .join(Conversation, Conversation.id == Participant.conversation_id)
    .where(Participant.user_id.in_(bindparam("uids", expanding=True)))
    .where(Conversation.deleted_at.is_(None), Participant.muted.is_(False))
    .where(Participant.request_pending.is_(False))  # requests stay off the badge
    .group_by(Participant.user_id)
)


def _count_unread(*, skipping: bool) -> Any:
    """The sender has read up to their own message, and accepted the conversation if it was a
    request to them (a reply accepts); everyone else who sees it has one more. In a group,
    those who blocked the sender (`skip`) never see it, so do not count it."""
    mine = Participant.user_id == bindparam("sid")
    counted = Participant.conversation_id == bindparam("cid")
    if skipping:
        counted = and_(
            counted, mine | Participant.user_id.not_in(bindparam("skip", expanding=True))
        )
    return (
        update(Participant)
        .where(counted)
        .values(
            unread_count=case((mine, 0), else_=Participant.unread_count + 1),
            last_read_message_id=case(
                (mine, bindparam("mid")), else_=Participant.last_read_message_id
            ),
            request_pending=case((mine, false()), else_=Participant.request_pending),
        )
    )


_COUNT_UNREAD = _count_unread(skipping=False)
_COUNT_UNREAD_SKIPPING = _count_unread(skipping=True)


# SQLite: a plain INSERT (its ON CONFLICT form is compiled afresh on every use, which the
# prepared path cannot cache): a retry with the same client_msg_id is found before it, by the
# one writer. PostgreSQL writes its own (`_write_in_turn`).
_INSERT = (
    insert(Message)
    .values(
        conversation_id=bindparam("cid"),
        sender_id=bindparam("sid"),
        body=bindparam("body"),
        client_msg_id=bindparam("cmid"),
        reply_to_id=bindparam("rid"),
        created_at=bindparam("now"),
        attachment_count=bindparam("natt"),
    )
    .returning(*Message.__table__.c)
)
_COLUMNS = Message.__table__.c


def _write_in_turn(lock: str) -> Any:
    """PostgreSQL's whole write in one round trip, written out (the dialect's ON CONFLICT
    construct is compiled afresh on every use):

    - the send's turn among all sends (`lock`: shared, or alone), before its id is handed out;
    - the row; a `client_msg_id` committed meanwhile in another conversation meets the unique
      index, nothing is written, and the statement returns no row;
    - the unread counts (`skip`: those who blocked the sender in a group) and the
      conversation's last message;
    - each recipient's new total (`uids`): what the statement's snapshot holds for their other
      conversations, plus this one as it now stands (their turns are held, so no other send
      to them is between the two).
    """
    columns = ", ".join(c.name for c in _COLUMNS)
    return text(
        f"WITH turn AS MATERIALIZED (SELECT {lock}(:alone)),"
        " ins AS (INSERT INTO message (conversation_id, sender_id, body, client_msg_id,"
        " reply_to_id, created_at, attachment_count) SELECT CAST(:cid AS bigint),"
        " CAST(:sid AS integer), CAST(:body AS text), CAST(:cmid AS varchar),"
        " CAST(:rid AS bigint), CAST(:now AS timestamptz), CAST(:natt AS integer) FROM turn"
        f" ON CONFLICT (sender_id, client_msg_id) DO NOTHING RETURNING {columns}),"
        " counted AS (UPDATE participant SET"
        " unread_count = CASE WHEN participant.user_id = ins.sender_id THEN 0"
        " ELSE participant.unread_count + 1 END,"
        " last_read_message_id = CASE WHEN participant.user_id = ins.sender_id THEN ins.id"
        " ELSE participant.last_read_message_id END,"
        " request_pending = participant.request_pending"
        " AND participant.user_id <> ins.sender_id"
        " FROM ins WHERE participant.conversation_id = ins.conversation_id"
        " AND (participant.user_id = ins.sender_id"
        " OR participant.user_id <> ALL(CAST(:skip AS integer[])))"
        " RETURNING participant.user_id, participant.unread_count, participant.muted,"
        " participant.request_pending),"
        " touched AS (UPDATE conversation SET last_message_id = ins.id,"
        " updated_at = ins.created_at FROM ins WHERE conversation.id = ins.conversation_id),"
        " totals AS (SELECT c.user_id, CASE WHEN c.muted OR c.request_pending THEN 0"
        " ELSE c.unread_count END + COALESCE((SELECT sum(p.unread_count) FROM participant p"
        " JOIN conversation v ON v.id = p.conversation_id WHERE p.user_id = c.user_id"
        " AND p.conversation_id <> CAST(:cid AS bigint) AND v.deleted_at IS NULL"
        " AND NOT p.muted AND NOT p.request_pending), 0) AS n FROM counted c"
        " WHERE c.user_id = ANY(CAST(:uids AS integer[])))"
        f" SELECT {', '.join('ins.' + c.name for c in _COLUMNS)},"
        " ARRAY(SELECT user_id FROM totals ORDER BY user_id) AS total_uids,"
        " ARRAY(SELECT n FROM totals ORDER BY user_id) AS total_ns FROM ins"
    ).columns(*_COLUMNS)


_WRITE_BESIDE_OTHERS = _write_in_turn("pg_advisory_xact_lock_shared")
_WRITE_ALONE = _write_in_turn("pg_advisory_xact_lock")
_SEND_AT_ONCE = text(
    f"SELECT {', '.join(c.name for c in _COLUMNS)}, total_uids, total_ns"
    " FROM pigeon_send_at_once(CAST(:cid AS bigint), CAST(:sid AS integer),"
    " CAST(:body AS text), CAST(:cmid AS varchar), CAST(:rid AS bigint),"
    " CAST(:now AS timestamptz), CAST(:members AS integer[]), CAST(:pending AS integer[]),"
    " CAST(:skip AS integer[]), CAST(:uids AS integer[]), CAST(:space AS integer),"
    " CAST(:alone AS bigint), CAST(:budget AS double precision))"
).columns(*_COLUMNS)


_TOTAL_OF_ONE = (
    select(func.coalesce(func.sum(Participant.unread_count), 0))
    .join(Conversation, Conversation.id == Participant.conversation_id)
    .where(
        Participant.user_id == bindparam("uid"),
        Conversation.deleted_at.is_(None),
        Participant.muted.is_(False),  # a muted conversation puts nothing on the badge
        Participant.request_pending.is_(False),  # nor does a message request
    )
)
# what a send runs on every message: prepared once where that pays (`Prepared` on SQLite)
HOT = (_MEMBERS, _BY_CLIENT_ID, _REPLY_TARGET, _INSERT, _COUNT_UNREAD, _TOUCH, _TOTAL_OF_ONE)


class Statements(Protocol):
    """Runs the send's statements: through a Connection, or prepared on its raw cursor."""

    def rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]: ...


class OnConnection:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        result = self.conn.execute(statement, params)
        return result.all() if result.returns_rows else []


class PreparedOnCursor:
    """The hot statements prepared, the rest (a group's lists) through the Connection; both on
    the same database connection, so in the same transaction."""

    def __init__(self, conn: Connection, prepared: dict[Any, Prepared]) -> None:
        self.conn, self.prepared = conn, prepared
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        found = self.prepared.get(statement)
        if found is None:
            result = self.conn.execute(statement, params)
            return result.all() if result.returns_rows else []
        return found.rows(self.cursor, params)


def _members(run: Statements, op: SendOp, statement: Any, **more: Any) -> Sequence[Any]:
    return _with_sender(op, run.rows(statement, {"cid": op.conversation_id, **more}))


def _with_sender(op: SendOp, members: Sequence[Any]) -> Sequence[Any]:
    """The members, if the sender is one of them (a conversation one is not in: not found)."""
    if not any(m.user_id == op.sender_id for m in members):
        raise NotFound("No such conversation.", code="conversation_not_found")
    return members


def take_turns(run: Statements, op: SendOp) -> Sequence[Any]:
    """PostgreSQL, before the send's place in the message stream is reserved (a send waiting
    for its turn holds no place): the conversation's turn, then its other members', in one
    round trip. Returns the members, each row with `original`: the id of the sender's message
    with this `client_msg_id`, if there is one."""
    turns = {"space": _PERSON_LOCKS, "sid": op.sender_id, "cmid": op.client_msg_id}
    return _members(run, op, _MEMBERS_IN_TURN, **turns)


def apply_send(
    run: Statements,
    op: SendOp,
    *,
    members: Sequence[Any] | None = None,
    alone: bool | None = None,
) -> SendResult:
    """One send inside the caller's transaction; raises the refusal a client sees.

    Every refusal comes before the first write, so a refused send leaves nothing behind.
    PostgreSQL passes the `members` its turns returned, and `alone`: whether the send has no
    place in the message stream, and so waits for every other send and holds them off.
    """
    concurrent = alone is not None
    if members is None:
        members = _members(run, op, _MEMBERS)
    if op.client_msg_id is not None and (not concurrent or members[0].original is not None):
        found = run.rows(_BY_CLIENT_ID, {"sid": op.sender_id, "cmid": op.client_msg_id})
        if found:
            return _original(run, found[0], op)
    others, blockers = admit(op, members)
    if op.reply_to_id is not None:
        target = run.rows(_REPLY_TARGET, {"rid": op.reply_to_id})
        check_reply(op, target[0].conversation_id if target else None)
    if op.attachment_ids:
        uploads = run.rows(_UPLOADS, {"ids": list(op.attachment_ids)})
        policy.check_attachments(op.sender_id, op.attachment_ids, uploads)
    values = _values(op)
    recipients = [uid for uid in others if uid not in blockers]
    if concurrent:  # PostgreSQL: the row, the counts and the totals in one statement
        written = run.rows(
            _WRITE_ALONE if alone else _WRITE_BESIDE_OTHERS,
            {**values, "alone": _ALONE_KEY, "skip": sorted(blockers), "uids": recipients},
        )
        if not written:  # the same client_msg_id, committed meanwhile in another conversation
            [found] = run.rows(_BY_CLIENT_ID, {"sid": op.sender_id, "cmid": op.client_msg_id})
            return _original(run, found, op)
        [row] = written
        totals = _carried_totals(row)
    else:
        [row] = run.rows(_INSERT, values)
        counts = {"cid": op.conversation_id, "sid": op.sender_id, "mid": row.id}
        if blockers:
            run.rows(_COUNT_UNREAD_SKIPPING, {**counts, "skip": sorted(blockers)})
        else:
            run.rows(_COUNT_UNREAD, counts)
        run.rows(_TOUCH, {"cid": op.conversation_id, "mid": row.id, "now": op.now})
        totals = _totals(run, recipients)
    attachments: Sequence[Any] = ()
    if op.attachment_ids:
        for position, attachment_id in enumerate(op.attachment_ids):
            run.rows(
                _ATTACH,
                {"aid": attachment_id, "mid": row.id, "cid": op.conversation_id, "pos": position},
            )
        attachments = run.rows(_ATTACHED, {"mid": row.id})
    return _written(op, members, row, recipients, totals, attachments)


def admit(op: SendOp, members: Sequence[Any]) -> tuple[list[int], set[int]]:
    """The rules a send is checked against its members by: the community boundary, then the
    blocks. Returns the other members, and those of them the send must skip (in a group, who
    blocked the sender)."""
    others = [m.user_id for m in members if m.user_id != op.sender_id]
    policy.check_same_community(op.sender, known_people(op, others))
    return others, policy.send_blockers(members[0].kind, op.sender_id, others, op.edges)


def check_reply(op: SendOp, target_conversation_id: int | None) -> None:
    """A reply names a message of the same conversation (`None`: no such message)."""
    if op.reply_to_id is not None and target_conversation_id != op.conversation_id:
        raise Invalid(
            "You can only reply to a message in the same conversation.",
            fields={"reply_to_id": "no such message in this conversation"},
        )


def _values(op: SendOp) -> dict[str, Any]:
    return {
        "cid": op.conversation_id,
        "sid": op.sender_id,
        "body": op.body,
        "cmid": op.client_msg_id,
        "rid": op.reply_to_id,
        "now": op.now,
        "natt": len(op.attachment_ids),
    }


def _written(
    op: SendOp,
    members: Sequence[Any],
    row: Any,
    recipients: list[int],
    totals: dict[int, int],
    attachments: Sequence[Any] = (),
) -> SendResult:
    requested = frozenset(m.user_id for m in members if m.request_pending) - {op.sender_id}
    accepted = any(m.user_id == op.sender_id and m.request_pending for m in members)
    return SendResult(row, True, recipients, totals, attachments, requested, accepted)


def _totals(run: Statements, recipients: list[int]) -> dict[int, int]:
    """Each recipient's unread total, read after their counts were written."""
    if len(recipients) == 1:
        [(total,)] = run.rows(_TOTAL_OF_ONE, {"uid": recipients[0]})
        return {recipients[0]: int(total)}
    if recipients:
        return {uid: int(n) for uid, n in run.rows(_TOTALS, {"uids": recipients})}
    return {}


def _carried_totals(row: Any) -> dict[int, int]:
    """Each recipient's new unread total, as PostgreSQL's write returns them."""
    return dict(zip(row.total_uids, map(int, row.total_ns), strict=True))


def known_people(op: SendOp, others: list[int]) -> list[Principal]:
    """The other members as the people cache holds them; `PeopleNeeded` for any it lacks, but
    on the retry (`skip_unknown`), whoever is still unknown has no account any more."""
    people = [op.known(uid) for uid in others]
    unknown = [uid for uid, p in zip(others, people, strict=True) if p is None]
    if unknown and not op.skip_unknown:
        raise PeopleNeeded(unknown)
    return [p for p in people if p is not None]


def _original(run: Statements, row: Any, op: SendOp) -> SendResult:
    if row.conversation_id != op.conversation_id:
        raise Invalid(
            "That client_msg_id was already used for a message in another conversation.",
            code="client_msg_id_reused",
            fields={"client_msg_id": "already used elsewhere"},
        )
    attachments = run.rows(_ATTACHED, {"mid": row.id}) if row.attachment_count else ()
    return SendResult(row, False, [], {}, attachments)


# --- the two ways to run it ---


class SendPath(Protocol):
    async def run(self, uow: UnitOfWork, op: SendOp) -> SendResult: ...

    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Member:
    kind: str  # the conversation's
    user_id: int
    request_pending: bool


class Members:
    """Each conversation's members, as this process last read or wrote them: the send at once
    checks a send against them without reading them (`InTransaction._checked`), and its write
    finds out whether they are still so; if not, they are forgotten and read again. At most
    `size` members in all (about 100 bytes each), the conversations least recently sent to
    forgotten first."""

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._known: collections.OrderedDict[int, tuple[Member, ...]] = collections.OrderedDict()
        self._held = 0  # members remembered, over every conversation

    def get(self, conversation_id: int) -> tuple[Member, ...] | None:
        found = self._known.get(conversation_id)
        if found is not None:
            self._known.move_to_end(conversation_id)
        return found

    def learn(self, conversation_id: int, rows: Sequence[Any]) -> tuple[Member, ...]:
        members = tuple(Member(r.kind, r.user_id, r.request_pending) for r in rows)
        self.forget(conversation_id)
        if len(members) <= self.size:
            self._known[conversation_id] = members
            self._held += len(members)
        while self._held > self.size:
            self._held -= len(self._known.popitem(last=False)[1])
        return members

    def sent(self, conversation_id: int, sender_id: int) -> None:
        """The sender wrote to it: a request to them is accepted (a reply accepts)."""
        found = self._known.get(conversation_id)
        if found is not None and any(m.user_id == sender_id and m.request_pending for m in found):
            self._known[conversation_id] = tuple(
                dataclasses.replace(m, request_pending=False) if m.user_id == sender_id else m
                for m in found
            )

    def forget(self, conversation_id: int) -> None:
        self._held -= len(self._known.pop(conversation_id, ()))

    def __len__(self) -> int:
        return self._held


async def _admit_learning(op: SendOp, members: Sequence[Any]) -> tuple[list[int], set[int]]:
    """`admit`, the people the cache lacked read first where it lacked some."""
    try:
        return admit(op, members)
    except PeopleNeeded as need:
        await op.learn(need.user_ids)
        return admit(op, members)


class InTransaction:
    """Run the send in the unit of work's messaging session (PostgreSQL), its place in the
    message stream reserved before its id is handed out.

    A send whose unit of work has not written the messaging database yet is first tried at
    once (`_at_once`): one statement that commits by itself (two where the members must be
    read), instead of a transaction's four round trips (BEGIN, the turns, the write, COMMIT).
    Like SQLite's writer thread, it commits the message before the unit of work commits; the
    events still go out after that, and the place it holds keeps them in order meanwhile.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self.concurrent = db.dialect == "postgresql"
        self.members = Members()

    async def run(self, uow: UnitOfWork, op: SendOp) -> SendResult:
        if self.concurrent and not op.attachment_ids and not uow.has_written(self.db):
            done = await self._at_once(uow, op)
            if done is not None:
                return done
            metrics.sends_in_transaction.inc()
        session = uow.messaging
        if not self.concurrent:
            return await session.run_sync(lambda s: apply_send(OnConnection(s.connection()), op))
        members = await session.run_sync(lambda s: take_turns(OnConnection(s.connection()), op))
        if members[0].original is None:
            # checked (and the people the cache lacks read) before the send holds a place: a
            # place holds back every process's deliveries, and reading people is a round trip
            # or three; the turns stay taken meanwhile
            await _admit_learning(op, members)
        ticket = await uow.reserve()
        alone = not ticket.placed
        result = await session.run_sync(
            lambda s: apply_send(OnConnection(s.connection()), op, members=members, alone=alone)
        )
        if result.created:
            uow.publisher.stream.handed_out(ticket, result.row.id)
        return result

    async def _at_once(self, uow: UnitOfWork, op: SendOp) -> SendResult | None:
        """The send checked against its conversation's members (`_checked`), its place
        reserved, then `pigeon_send_at_once` run, which takes the turns and writes only if
        every turn is free and the members are as checked. Returns None where it wrote nothing
        and the send is for the transaction to make (a retried `client_msg_id`, a turn taken,
        the members changed, a place not in Redis): the place is given back first, so no
        place is held while the send waits for its turns. A connection is held only for each
        statement, not while people or Redis are waited for."""
        checked = await self._checked(op)
        if checked is None:
            return None
        members, others, blockers = checked
        recipients = [uid for uid in others if uid not in blockers]
        ticket = await uow.reserve()
        left = ticket.left()
        if not ticket.placed or left <= 0:
            await uow.give_back(ticket)
            return None
        params = {
            **_values(op),
            "members": [m.user_id for m in members],
            "pending": [m.user_id for m in members if m.request_pending],
            "skip": sorted(blockers),
            "uids": recipients,
            "space": _PERSON_LOCKS,
            "alone": _ALONE_KEY,
            "budget": left,
        }
        async with self.db.autocommit() as conn:
            written = await conn.run_sync(lambda c: OnConnection(c).rows(_SEND_AT_ONCE, params))
        if not written:
            self.members.forget(op.conversation_id)
            await uow.give_back(ticket)
            return None
        [row] = written
        ticket.committed = True
        uow.publisher.stream.handed_out(ticket, row.id)
        self.members.sent(op.conversation_id, op.sender_id)
        return _written(op, members, row, recipients, _carried_totals(row))

    async def _checked(self, op: SendOp) -> tuple[Sequence[Member], list[int], set[int]] | None:
        """The members, the others and who of them to skip (`admit`). Members are taken as
        this process remembers them where it does (not for a reply, whose target is read with
        them): the write finds out if they changed. A send is refused only on members just
        read, never on remembered ones, which may be out of date. None: a retried
        `client_msg_id`, which the transaction answers."""
        remembered = None if op.reply_to_id is not None else self.members.get(op.conversation_id)
        if remembered is not None:
            try:
                return remembered, *await _admit_learning(op, _with_sender(op, remembered))
            except AppError:
                self.members.forget(op.conversation_id)
        read = {"sid": op.sender_id, "cmid": op.client_msg_id, "rid": op.reply_to_id}
        rows = await self.db.run_read(
            lambda c: _members(OnConnection(c), op, _MEMBERS_AT_ONCE, **read)
        )
        if rows[0].original is not None:
            return None
        members = self.members.learn(op.conversation_id, rows)
        others, blockers = await _admit_learning(op, members)
        check_reply(op, rows[0].reply_in)
        return members, others, blockers

    def close(self) -> None:
        return None


class GroupCommit:
    """One writer thread for the SQLite messaging database, committing sends in batches."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine: Engine = create_engine(
            f"sqlite:///{db.path}", pool_size=1, max_overflow=0, hide_parameters=True
        )
        sqlite_pragmas(self.engine, immediate=True)
        self.prepared = {statement: Prepared(statement, self.engine.dialect) for statement in HOT}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pigeon-sends", daemon=True)
        self._thread.start()

    def waiting(self) -> int:
        """Sends queued for the writer thread (a gauge in /metrics)."""
        return self._queue.qsize()

    async def run(self, uow: UnitOfWork, op: SendOp) -> SendResult:
        if uow.has_written(self.db):
            # this request already holds the write lock (it just started the conversation,
            # say): the send joins its transaction instead of waiting for it
            session = uow.messaging
            return await session.run_sync(lambda s: apply_send(OnConnection(s.connection()), op))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SendResult] = loop.create_future()
        self._queue.put((op, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)
        self.engine.dispose()

    def _run(self) -> None:
        item = self._queue.get()  # connected at the first send: opening is not creating
        if item is None:
            return
        with self.engine.connect() as conn:
            while True:
                if item is None:
                    item = self._queue.get()
                if item is None:
                    return
                batch, item = [item], None
                while len(batch) < MAX_BATCH:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        self._queue.put(None)  # finish this batch, then stop
                        break
                    batch.append(nxt)
                self._commit_batch(conn, batch)

    def _commit_batch(self, conn: Connection, batch: list[Any]) -> None:
        """One transaction for the batch. A refused send wrote nothing (refusals come first),
        so it needs no savepoint; any other failure fails the whole batch."""
        outcomes: list[SendResult | BaseException] = []
        try:
            with conn.begin():
                run = PreparedOnCursor(conn, self.prepared)
                for op, _, _ in batch:
                    try:
                        outcomes.append(apply_send(run, op))
                    except AppError as exc:
                        outcomes.append(exc)
        except Exception as exc:  # the batch did not commit: nobody's send is acknowledged
            log_failure(log, "send batch failed")
            outcomes = [exc] * len(batch)
        for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, outcome)


def _settle(future: asyncio.Future[SendResult], outcome: SendResult | BaseException) -> None:
    if future.done():  # the request went away; the message is committed all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def make_send_path(db: Database) -> SendPath:
    """Chosen once when the app starts: group commit on SQLite, the unit of work elsewhere."""
    if db.is_sqlite and db.path not in (None, "", ":memory:"):
        return GroupCommit(db)
    return InTransaction(db)
