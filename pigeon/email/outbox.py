"""Queue an email in the caller's unit of work; list and requeue the outbox for admins.

An email is a row added beside the change that causes it, in the same transaction: if the
change rolls back, so does the email, and nothing is sent; once it commits, the worker
(`email.worker`) delivers it, however long the SMTP server takes to come back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import orjson
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.core.audit import audit
from pigeon.core.errors import Conflict, Invalid, NotFound
from pigeon.core.principal import Principal
from pigeon.core.uow import UnitOfWork
from pigeon.email.models import OutboxEmail
from pigeon.email.render import render
from pigeon.settings import Settings

State = Literal["pending", "sent", "dead"]
HEADER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,75}")
# written by the sender from the row; an extra header must not replace or repeat them
OWN_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "sender", "reply-to"}
    | {"content-type", "content-transfer-encoding", "mime-version"}
)


def check_address(address: str) -> str:
    """The address in its normal form; Invalid for anything an SMTP server would refuse (and
    for line breaks, which would let a value write its own headers)."""
    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise Invalid(
            f"Not an email address: {exc}", code="invalid_email", fields={"to": str(exc)}
        ) from None


async def queue_email(
    uow: UnitOfWork,
    to: str,
    template: str,
    context: dict[str, Any],
    *,
    kind: str,
    settings: Settings,
    headers: dict[str, str] | None = None,
) -> OutboxEmail:
    """Render `template` and add the email to the outbox, in `uow`'s transaction; due now.
    `headers` are extra ones the email carries (such as `List-Unsubscribe`), checked here."""
    rendered = render(settings, template, context)
    extra = check_headers(headers or {})
    now = uow.clock.now()
    row = OutboxEmail(
        to_address=check_address(to),
        subject=rendered.subject[:300],
        text_body=rendered.text,
        html_body=rendered.html,
        kind=kind,
        created_at=now,
        attempts=0,
        next_attempt_at=now,
        headers=orjson.dumps(extra).decode() if extra else None,
    )
    uow.app.add(row)
    await uow.app.flush()
    return row


def check_headers(headers: dict[str, str]) -> dict[str, str]:
    """Extra headers as given; ValueError for a name that is not a plain header name, one the
    sender writes itself, or a value with a line break (which would write headers of its own).
    Only the server's code passes headers, so a bad one is a bug, not a person's mistake."""
    for name, value in headers.items():
        if not HEADER_NAME.fullmatch(name) or name.lower() in OWN_HEADERS:
            raise ValueError(f"not an extra header an email may carry: {name!r}")
        if any(ch in value for ch in "\r\n\0") or len(value) > 2000:
            raise ValueError(f"header {name!r} has a value no email may carry")
    return dict(headers)


def _in_state(state: State) -> Any:
    if state == "sent":
        return OutboxEmail.sent_at.is_not(None)
    if state == "dead":
        return OutboxEmail.dead_at.is_not(None)
    return OutboxEmail.sent_at.is_(None) & OutboxEmail.dead_at.is_(None)


async def list_outbox(
    session: AsyncSession, *, state: State, before_id: int | None = None, limit: int = 50
) -> Sequence[OutboxEmail]:
    """The newest emails in `state` first; page on with `before_id`."""
    stmt = select(OutboxEmail).where(_in_state(state)).order_by(OutboxEmail.id.desc()).limit(limit)
    if before_id is not None:
        stmt = stmt.where(OutboxEmail.id < before_id)
    return (await session.scalars(stmt)).all()


async def waiting(session: AsyncSession) -> dict[str, int]:
    """How many emails are pending and how many are dead: what an admin must know at a glance."""
    rows = await session.execute(
        select(OutboxEmail.dead_at.is_not(None), func.count())
        .where(OutboxEmail.sent_at.is_(None))
        .group_by(OutboxEmail.dead_at.is_not(None))
    )
    counts = {"pending": 0, "dead": 0}
    for dead, n in rows:
        counts["dead" if dead else "pending"] = n
    return counts


async def retry_dead(uow: UnitOfWork, actor: Principal, email_id: int) -> OutboxEmail:
    """Give a dead email a fresh set of attempts, due now; audited. Only dead ones: a pending
    email is retried anyway, and a sent one must not go out twice."""
    row = await uow.app.get(OutboxEmail, email_id, with_for_update=True)
    if row is None:
        raise NotFound("No such email.", code="email_not_found")
    if row.dead_at is None:
        state = "sent" if row.sent_at is not None else "pending"
        raise Conflict(f"Only a dead email can be retried; this one is {state}.", code="not_dead")
    now = uow.clock.now()
    row.dead_at = None
    row.attempts = 0
    row.next_attempt_at = now
    audit(
        uow,
        "email.retried",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="email",
        target_id=row.id,
        data={"to": row.to_address, "kind": row.kind, "last_error": row.last_error},
    )
    await uow.app.flush()
    return row
