"""Deliver the outbox: due emails are claimed one at a time, sent, and marked.

One process at a time delivers (a lease in the primary database, as retention's); on top of
that each email is *claimed* before it is sent, by a conditional update that pushes its
`next_attempt_at` past the time a send can take, so even two deliverers that somehow overlap
(an expired lease, `pigeon email test` beside the server) never send one email twice, and an
email whose sender died mid-send becomes due again once the claim runs out.

A failed send counts an attempt, records the reason (never the password) and waits
base * 2^(attempts-1) seconds, at most the cap; after `email_retry_max_attempts` the email is
dead: kept, listed for admins, who may retry it (`outbox.retry_dead`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy import select, update

from pigeon.core import metrics
from pigeon.core.background import Periodic
from pigeon.core.db import Database, rowcount
from pigeon.core.errors import Conflict
from pigeon.core.leases import held, holder_id
from pigeon.core.runtime import Runtime
from pigeon.email.models import OutboxEmail
from pigeon.email.sender import SendFailed, send
from pigeon.settings import Settings

log = logging.getLogger("pigeon.email")

LEASE = "email"
BATCH = 100


@dataclasses.dataclass
class Delivery:
    """What one pass did."""

    off: bool = False  # no SMTP host: nothing was tried
    sent: int = 0
    failed: int = 0  # to be retried
    dead: int = 0  # given up on this pass
    errors: list[str] = dataclasses.field(default_factory=list)


def claim_seconds(settings: Settings) -> float:
    """Long enough for the slowest send: connect, greet, TLS, log in, send, each may time out."""
    return max(120.0, settings.smtp_timeout_seconds * 6)


def backoff(settings: Settings, attempts: int) -> dt.timedelta:
    seconds = settings.email_retry_base_seconds * 2 ** min(max(attempts - 1, 0), 30)
    return dt.timedelta(seconds=min(seconds, settings.email_retry_max_seconds))


async def _due_ids(db: Database, now: dt.datetime, limit: int) -> list[int]:
    async with db.read() as session:
        return list(
            await session.scalars(
                select(OutboxEmail.id)
                .where(
                    OutboxEmail.sent_at.is_(None),
                    OutboxEmail.dead_at.is_(None),
                    OutboxEmail.next_attempt_at <= now,
                )
                .order_by(OutboxEmail.next_attempt_at, OutboxEmail.id)
                .limit(limit)
            )
        )


async def _claim(rt: Runtime, email_id: int) -> OutboxEmail | None:
    """The email, if it is still due and now ours to send; None if someone else has it."""
    now = rt.clock.now()
    hold = now + dt.timedelta(seconds=claim_seconds(rt.settings))
    async with rt.dbs.app.write() as session:
        taken = await session.execute(
            update(OutboxEmail)
            .where(
                OutboxEmail.id == email_id,
                OutboxEmail.sent_at.is_(None),
                OutboxEmail.dead_at.is_(None),
                OutboxEmail.next_attempt_at <= now,
            )
            .values(next_attempt_at=hold)
        )
        if not rowcount(taken):
            return None
        return await session.get(OutboxEmail, email_id)


async def _deliver(rt: Runtime, row: OutboxEmail, result: Delivery) -> None:
    """Send a claimed email and record how it went."""
    settings = rt.settings
    error: str | None = None
    try:
        await send(settings, row)
    except SendFailed as exc:
        error = str(exc)
    now = rt.clock.now()
    attempts = row.attempts + 1
    values: dict[str, object] = {"attempts": attempts}
    if error is None:
        values.update(sent_at=now, last_error=None)
        result.sent += 1
    elif attempts >= settings.email_retry_max_attempts:
        values.update(dead_at=now, next_attempt_at=now, last_error=error)
        result.dead += 1
        log.warning("email %s is dead after %s attempts: %s", row.id, attempts, error)
    else:
        values.update(next_attempt_at=now + backoff(settings, attempts), last_error=error)
        result.failed += 1
        log.info("email %s: attempt %s failed: %s", row.id, attempts, error)
    if error is not None:
        result.errors.append(error)
    outcome = "sent" if error is None else "dead" if "dead_at" in values else "failed"
    metrics.emails_delivered.labels(outcome).inc()
    async with rt.dbs.app.write() as session:
        await session.execute(update(OutboxEmail).where(OutboxEmail.id == row.id).values(**values))


async def deliver_due(
    rt: Runtime, *, limit: int = BATCH, renew: Callable[[], Awaitable[None]] | None = None
) -> Delivery:
    """One pass over what is due now (at most `limit`); with email off, nothing is tried."""
    result = Delivery(off=not rt.settings.smtp_host)
    if result.off:
        return result
    for email_id in await _due_ids(rt.dbs.app, rt.clock.now(), limit):
        row = await _claim(rt, email_id)
        if row is not None:
            await _deliver(rt, row, result)
        if renew:
            await renew()
    return result


async def deliver_one(rt: Runtime, email_id: int) -> Delivery:
    """Send this email now if it is due and nobody else is sending it (`pigeon email test`)."""
    result = Delivery(off=not rt.settings.smtp_host)
    if not result.off and (row := await _claim(rt, email_id)) is not None:
        await _deliver(rt, row, result)
    return result


async def deliver_exclusive(
    rt: Runtime, *, holder: str | None = None, limit: int = BATCH
) -> Delivery:
    """`deliver_due` under the lease; Conflict when another process is delivering."""
    busy = Conflict("Another process is delivering email right now.", code="email_running")
    seconds = claim_seconds(rt.settings)
    async with held(
        rt.dbs.app, LEASE, holder or holder_id(), seconds, clock=rt.clock, busy=busy
    ) as renew:
        return await deliver_due(rt, limit=limit, renew=renew)


class Worker(Periodic):
    """Delivers due email every `email_worker_interval_seconds` in the background, while an SMTP
    host is set (and the interval is not 0); a full batch is followed by the next at once."""

    name = "email"

    def interval(self) -> float:
        return self.settings.email_worker_interval_seconds

    def enabled(self) -> bool:
        return bool(self.settings.smtp_host) and super().enabled()

    async def run_once(self, holder: str) -> bool:
        while True:
            done = await deliver_exclusive(self.rt, holder=holder)
            if done.sent + done.failed + done.dead < BATCH:
                return True
