"""The send path on SQLite: one writer thread, many sends per transaction (group commit).

Through the async driver every statement is a round trip to a worker thread; a send is a
handful of statements plus a commit, and that dance, not the disk, capped the embedded server
at ~150 sends/s. Here the request hands its send to a single writer thread and awaits it; the
thread takes every send that is waiting, runs them in one transaction (a savepoint each, so one
refused send does not undo the others), commits once (fsync'd: acknowledged means durable),
and only then wakes the senders. Same rules, same rows as the PostgreSQL path in `service`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import queue
import sqlite3
import threading
from typing import Any

from pigeon.core.errors import AppError, Invalid, NotFound
from pigeon.messaging import policy

log = logging.getLogger("pigeon.sends")
MAX_BATCH = 256
_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME storage format
_COLUMNS = (
    "id, conversation_id, sender_id, body, client_msg_id, reply_to_id, created_at, edited_at, "
    "deleted_at"
)


@dataclasses.dataclass(slots=True)
class SendOp:
    conversation_id: int
    sender_id: int
    body: str
    client_msg_id: str | None
    reply_to_id: int | None
    now: dt.datetime
    edges: frozenset[tuple[int, int]]  # every (blocker, blocked) pair involving the sender


@dataclasses.dataclass(slots=True)
class SendResult:
    row: dict[str, Any]
    created: bool
    recipients: list[int]
    totals: dict[int, int]


def _when(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def _row(values: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "conversation_id", "sender_id", "body", "client_msg_id", "reply_to_id")
    row = dict(zip(keys, values[:6], strict=True))
    row["created_at"], row["edited_at"], row["deleted_at"] = (_when(v) for v in values[6:9])
    return row


class SqliteSendWriter:
    def __init__(self, path: str) -> None:
        self.path = path
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="pigeon-sends", daemon=True)
        self._thread.start()

    async def send(self, op: SendOp) -> SendResult:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SendResult] = loop.create_future()
        self._queue.put((op, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    # --- the writer thread ---

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "foreign_keys=ON",
            "busy_timeout=10000",
        ):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def _run(self) -> None:
        conn = self._connect()
        try:
            while True:
                item = self._queue.get()
                if item is None:
                    return
                batch = [item]
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
        finally:
            conn.close()

    def _commit_batch(self, conn: sqlite3.Connection, batch: list[Any]) -> None:
        outcomes: list[SendResult | BaseException] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, _, _ in batch:
                conn.execute("SAVEPOINT send")
                try:
                    outcomes.append(self._apply(conn, op))
                    conn.execute("RELEASE send")
                except AppError as exc:
                    conn.execute("ROLLBACK TO send")
                    conn.execute("RELEASE send")
                    outcomes.append(exc)
            conn.execute("COMMIT")
        except Exception as exc:  # the batch did not commit: nobody's send is acknowledged
            log.exception("send batch failed")
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [exc] * len(batch)
        for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, outcome)

    def _apply(self, conn: sqlite3.Connection, op: SendOp) -> SendResult:
        members = conn.execute(
            "SELECT c.kind, p.user_id FROM conversation c JOIN participant p "
            "ON p.conversation_id = c.id WHERE c.id = ? AND c.deleted_at IS NULL",
            (op.conversation_id,),
        ).fetchall()
        ids = {uid for _, uid in members}
        if op.sender_id not in ids:
            raise NotFound("No such conversation.", code="conversation_not_found")
        kind = members[0][0]
        others = [uid for uid in ids if uid != op.sender_id]
        if op.client_msg_id is not None:
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM message WHERE sender_id = ? AND client_msg_id = ?",
                (op.sender_id, op.client_msg_id),
            ).fetchone()
            if found is not None:
                row = _row(found)
                if row["conversation_id"] != op.conversation_id:
                    raise Invalid(
                        "That client_msg_id was already used for a message in another "
                        "conversation.",
                        code="client_msg_id_reused",
                        fields={"client_msg_id": "already used elsewhere"},
                    )
                return SendResult(row, False, [], {})
        blockers = policy.send_blockers(kind, op.sender_id, others, op.edges)
        if op.reply_to_id is not None:
            target = conn.execute(
                "SELECT conversation_id FROM message WHERE id = ?", (op.reply_to_id,)
            ).fetchone()
            if target is None or target[0] != op.conversation_id:
                raise Invalid(
                    "You can only reply to a message in the same conversation.",
                    fields={"reply_to_id": "no such message in this conversation"},
                )
        now = op.now.astimezone(dt.UTC).strftime(_FORMAT)
        found = conn.execute(
            f"INSERT INTO message (conversation_id, sender_id, body, client_msg_id, reply_to_id, "
            f"created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING {_COLUMNS}",
            (op.conversation_id, op.sender_id, op.body, op.client_msg_id, op.reply_to_id, now),
        ).fetchone()
        row = _row(found)
        skip = ",".join(str(int(b)) for b in blockers)
        conn.execute(
            "UPDATE participant SET "
            "unread_count = CASE WHEN user_id = ? THEN 0 ELSE unread_count + 1 END, "
            "last_read_message_id = CASE WHEN user_id = ? THEN ? ELSE last_read_message_id END "
            "WHERE conversation_id = ?" + (f" AND user_id NOT IN ({skip})" if skip else ""),
            (op.sender_id, op.sender_id, row["id"], op.conversation_id),
        )
        conn.execute(
            "UPDATE conversation SET last_message_id = ?, updated_at = ? WHERE id = ?",
            (row["id"], now, op.conversation_id),
        )
        recipients = [uid for uid in others if uid not in blockers]
        totals: dict[int, int] = {}
        if recipients:
            marks = ",".join("?" * len(recipients))
            totals = dict(
                conn.execute(
                    "SELECT p.user_id, COALESCE(SUM(p.unread_count), 0) FROM participant p "
                    "JOIN conversation c ON c.id = p.conversation_id "
                    f"WHERE p.user_id IN ({marks}) AND c.deleted_at IS NULL GROUP BY p.user_id",
                    recipients,
                ).fetchall()
            )
        return SendResult(row, True, recipients, totals)


def _settle(future: asyncio.Future[SendResult], outcome: SendResult | BaseException) -> None:
    if future.done():  # the request went away; the message is committed all the same
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)
