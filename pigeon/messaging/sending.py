"""The send path: one insert and two updates, whatever the size of the conversation.

Everything the rules need is cached in memory (the switch, the sender, the sender's blocks); the
conversation's membership is checked inside the write itself. On SQLite the write goes to the
group-committing writer thread (`sqlite_sends`); elsewhere it runs here, step for step the same.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import service as accounts
from pigeon.core import metrics, ratelimit
from pigeon.core.clock import clock
from pigeon.core.db import Database
from pigeon.core.errors import Invalid, NotFound
from pigeon.core.events import Event, publish
from pigeon.messaging import policy
from pigeon.messaging.service import (
    C,
    Ctx,
    M,
    P,
    _insert,
    load_convo,
    message_dict,
    require_enabled,
    start_direct,
    unread_totals,
)
from pigeon.messaging.sqlite_sends import SendOp, SendResult, SqliteSendWriter

_ORDER_LOCK = 0x50474D53  # PostgreSQL advisory lock key: message ids in commit order


async def send_message(
    ctx: Ctx,
    conversation_id: int,
    *,
    body: str,
    client_msg_id: str | None = None,
    reply_to_id: int | None = None,
) -> tuple[dict[str, Any], bool]:
    """Send; returns (message, created). A repeated client_msg_id returns the original.

    Everything the rules need is cached in memory (the switch, the sender, the sender's
    blocks); the conversation's membership is checked inside the write itself.
    """
    await ratelimit.check_send(ctx.settings, ctx.viewer.id)
    await require_enabled(ctx)
    body = policy.clean_body(body, ctx.settings.max_body_chars)
    edges = await accounts.get_block_edges(ctx.dbs.app, ctx.viewer.id)
    op = SendOp(
        conversation_id, ctx.viewer.id, body, client_msg_id, reply_to_id, clock.now(), edges
    )
    db = ctx.dbs.messaging
    if db.is_sqlite:
        writer = db.resources.get("sends")
        if writer is None:
            writer = db.resources["sends"] = SqliteSendWriter(str(db.path))
        result = await writer.send(op)
    else:
        result = await _send(db, op)
    message = message_dict(result.row)
    if result.created:
        metrics.messages_sent.inc()
        await publish(
            Event(type="message.new", data=message, id=message["id"]),
            user_ids=[ctx.viewer.id, *result.recipients],
        )
        for uid in result.recipients:
            await publish(
                Event(
                    type="unread",
                    data={"total": result.totals.get(uid, 0), "conversation_id": conversation_id},
                ),
                user_ids=[uid],
            )
    return message, result.created


async def _send(db: Database, op: SendOp) -> SendResult:
    """The send on PostgreSQL (and any async backend): the same steps as `sqlite_sends`."""
    async with db.write() as session:
        convo = await load_convo(session, op.conversation_id)
        if convo is None or op.sender_id not in convo.members:
            raise NotFound("No such conversation.", code="conversation_not_found")
        if op.client_msg_id is not None:
            original = await _by_client_id(session, op.sender_id, op.client_msg_id)
            if original is not None:
                _original(original, op.conversation_id)
                return SendResult(original._asdict(), False, [], {})
        others = convo.other_ids(op.sender_id)
        blockers = policy.send_blockers(convo.kind, op.sender_id, others, op.edges)
        if op.reply_to_id is not None:
            await _check_reply(session, op.conversation_id, op.reply_to_id)
        if db.dialect == "postgresql":
            # Ids must commit in the order they are handed out: a client resuming from the
            # highest id it saw must not skip a lower one still committing. Sends therefore take
            # turns for the last few statements of their transaction (held until commit).
            await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ORDER_LOCK})
        row = (
            await session.execute(
                _insert(db, M)
                .values(
                    conversation_id=op.conversation_id,
                    sender_id=op.sender_id,
                    body=op.body,
                    client_msg_id=op.client_msg_id,
                    reply_to_id=op.reply_to_id,
                    created_at=op.now,
                )
                .on_conflict_do_nothing(index_elements=["sender_id", "client_msg_id"])
                .returning(*M.c)
            )
        ).first()
        if row is None:  # a concurrent retry with the same client_msg_id won
            original = await _by_client_id(session, op.sender_id, op.client_msg_id or "")
            _original(original, op.conversation_id)
            return SendResult(original._asdict(), False, [], {})
        mine = P.c.user_id == op.sender_id
        counted = P.c.conversation_id == op.conversation_id
        if blockers:
            counted = and_(counted, or_(mine, P.c.user_id.not_in(blockers)))
        await session.execute(
            update(P)
            .where(counted)
            .values(
                unread_count=case((mine, 0), else_=P.c.unread_count + 1),
                last_read_message_id=case((mine, row.id), else_=P.c.last_read_message_id),
            )
        )
        await session.execute(
            update(C)
            .where(C.c.id == op.conversation_id)
            .values(last_message_id=row.id, updated_at=op.now)
        )
        recipients = [uid for uid in others if uid not in blockers]
        totals = await unread_totals(session, recipients)
    return SendResult(row._asdict(), True, recipients, totals)


async def _by_client_id(session: AsyncSession, sender_id: int, client_msg_id: str) -> Any:
    return (
        await session.execute(
            select(M).where(M.c.sender_id == sender_id, M.c.client_msg_id == client_msg_id)
        )
    ).first()


def _original(row: Any, conversation_id: int) -> dict[str, Any]:
    if row.conversation_id != conversation_id:
        raise Invalid(
            "That client_msg_id was already used for a message in another conversation.",
            code="client_msg_id_reused",
            fields={"client_msg_id": "already used elsewhere"},
        )
    return message_dict(row)


async def _check_reply(session: AsyncSession, conversation_id: int, reply_to_id: int) -> None:
    target = await session.scalar(select(M.c.conversation_id).where(M.c.id == reply_to_id))
    if target != conversation_id:
        raise Invalid(
            "You can only reply to a message in the same conversation.",
            fields={"reply_to_id": "no such message in this conversation"},
        )


async def send_direct(
    ctx: Ctx, recipient_id: int, *, body: str, client_msg_id: str | None
) -> tuple[dict[str, Any], bool]:
    """The original plan's `/messages/send`: start or reuse the direct conversation, then send."""
    await require_enabled(ctx)
    body = policy.clean_body(body, ctx.settings.max_body_chars)
    conv_id, _ = await start_direct(ctx, recipient_id)
    return await send_message(ctx, conv_id, body=body, client_msg_id=client_msg_id)
