"""Email digests for people who are away: who wrote to them and how much, never what.

A member gets a digest when all of these hold (one pass of the job checks them in this order,
cheapest first):

| rule                                                     | where it is checked             |
| -------------------------------------------------------- | ------------------------------- |
| messaging is on                                          | `rt.switches`                   |
| something unread in a conversation that may notify       | `messaging.digest` (not muted,  |
|                                                          | not a request)                  |
| digests on; account active, not deleted, not suspended;  | `accounts.notifications`        |
| not seen for `digest_delay_seconds`                      |                                 |
| no digest within the last `digest_delay_seconds`         | `DigestState.sent_at`, here     |
| no live connection right now (on any process)            | presence, given to the job      |
| unread messages newer than what the last digest counted  | `DigestState.covered_message_id`|

The email is queued in the same transaction that records `sent_at` and the newest message it
counted, so a crash either does both or neither: a digest is never sent twice, never skipped,
and never counts a message again. One process runs the job at a time (a lease), and the
conditional check of `sent_at` inside that transaction guards even an overlap.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import select

from pigeon.accounts import blocks, notifications
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.core.background import Periodic
from pigeon.core.errors import AppError, Conflict
from pigeon.core.leases import held, holder_id
from pigeon.core.runtime import Runtime
from pigeon.email.outbox import queue_email
from pigeon.messaging import digest as unread
from pigeon.notifications.models import DigestState

log = logging.getLogger("pigeon.digest")

LEASE = "digest"
LEASE_SECONDS = 300.0
CHUNK = 500  # people looked up at once
IsOnline = Callable[[int], Awaitable[bool]]


@dataclasses.dataclass
class DigestRun:
    """What one pass did."""

    queued: int = 0
    online: int = 0  # had something to be told, but are connected: nothing sent


async def _recent_digests(rt: Runtime, user_ids: list[int]) -> dict[int, DigestState]:
    async with rt.dbs.app.read() as session:
        rows = await session.scalars(select(DigestState).where(DigestState.user_id.in_(user_ids)))
        return {row.user_id: row for row in rows}


def _names(users: dict[int, User]) -> Callable[[int], str]:
    def name(user_id: int) -> str:
        user = users.get(user_id)
        return user.display_name if user is not None else accounts.DELETED_NAME

    return name


async def digest_context(rt: Runtime, found: list[unread.Unread]) -> dict[str, Any]:
    """The template's words: counts, display names and group titles, links. No message text
    or attachment names exist here to leak: `messaging.digest` reads neither."""
    shown = found[: unread.MAX_CONVERSATIONS]
    sender_ids = {sid for item in shown for sid in item.senders}
    async with rt.dbs.app.read() as session:
        name = _names(await accounts.users_by_ids(session, sender_ids))
    conversations = [
        {
            "id": item.conversation_id,
            "group": item.kind == "group",
            "title": item.title or "a group conversation",
            "count": item.count,
            "senders": [name(sid) for sid in sorted(item.senders, key=lambda s: -item.senders[s])],
            "path": f"/messages/{item.conversation_id}",
        }
        for item in shown
    ]
    return {
        "total": sum(item.count for item in found),
        "conversations": conversations,
        "more": len(found) - len(shown),
    }


async def _send_one(
    rt: Runtime, user: User, covered: DigestState | None, is_online: IsOnline, result: DigestRun
) -> None:
    """Queue this person's digest if they still have something new and are not connected;
    `covered` is their last digest as this pass read it (checked again, locked, before the
    email is queued)."""
    settings, now = rt.settings, rt.clock.now()
    away_since = now - dt.timedelta(seconds=settings.digest_delay_seconds)
    edges = await blocks.get_block_edges(rt, user.id)
    hidden = {blocked for blocker, blocked in edges if blocker == user.id}
    async with rt.dbs.messaging.read() as session:
        found = await unread.unread_after(
            session,
            user.id,
            after_id=covered.covered_message_id if covered else 0,
            hidden_senders=hidden,
        )
    if not found:
        return
    if await is_online(user.id):
        result.online += 1
        return
    context = await digest_context(rt, found)
    token = notifications.unsubscribe_token(settings, user.id, "digest")
    unsubscribe = f"{settings.public_url}/unsubscribe/{token}"
    async with rt.uow_scope() as uow:
        state = await uow.app.get(DigestState, user.id, with_for_update=True)
        if state is not None and state.sent_at > away_since:
            return  # another pass got here first
        if not (await notifications.get_notifications(uow.app, user.id)).email_digest:
            return  # turned off since this pass read who wants one
        if state is None:
            state = DigestState(user_id=user.id, sent_at=now, covered_message_id=0)
            uow.app.add(state)
        state.sent_at = now
        state.covered_message_id = max(state.covered_message_id, *(u.newest_id for u in found))
        await queue_email(
            uow,
            user.email,
            "digest",
            {**context, "name": user.display_name, "unsubscribe_url": unsubscribe},
            kind="digest",
            settings=settings,
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            },
        )
    result.queued += 1


async def send_digests(
    rt: Runtime, is_online: IsOnline, *, renew: Callable[[], Awaitable[None]] | None = None
) -> DigestRun:
    """One pass: queue a digest for everyone the rules above allow, now."""
    result = DigestRun()
    if not await rt.switches.messaging_enabled():
        return result  # nobody can read messages now: no reason to go and look
    now = rt.clock.now()
    away_since = now - dt.timedelta(seconds=rt.settings.digest_delay_seconds)
    async with rt.dbs.messaging.read() as session:
        waiting = await unread.waiting_readers(session)
    for start in range(0, len(waiting), CHUNK):
        chunk = waiting[start : start + CHUNK]
        async with rt.dbs.app.read() as session:
            people = await notifications.digest_recipients(
                session, chunk, away_since=away_since, now=now
            )
        states = await _recent_digests(rt, [u.id for u in people])
        for user in people:
            state = states.get(user.id)
            if state is not None and state.sent_at > away_since:
                continue  # at most one per period
            try:
                await _send_one(rt, user, state, is_online, result)
            except AppError as exc:  # one person's address must not hold up everyone else's
                log.warning("no digest for user %s: %s", user.id, exc.message)
        if renew:
            await renew()
    return result


async def send_exclusive(
    rt: Runtime, is_online: IsOnline, *, holder: str | None = None
) -> DigestRun:
    """`send_digests` under the lease; Conflict while another process runs it."""
    busy = Conflict("Another process is sending digests right now.", code="digest_running")
    async with held(
        rt.dbs.app, LEASE, holder or holder_id(), LEASE_SECONDS, clock=rt.clock, busy=busy
    ) as renew:
        return await send_digests(rt, is_online, renew=renew)


class DigestJob(Periodic):
    """Looks for people to send a digest every `digest_interval_seconds` (0: never), while
    email is set up. `is_online` asks the live presence, which only the hub knows."""

    name = "digest"

    def __init__(self, rt: Runtime, is_online: IsOnline) -> None:
        super().__init__(rt)
        self.is_online = is_online

    def interval(self) -> float:
        return self.settings.digest_interval_seconds

    def enabled(self) -> bool:
        return bool(self.settings.smtp_host) and super().enabled()

    async def run_once(self, holder: str) -> bool:
        done = await send_exclusive(self.rt, self.is_online, holder=holder)
        if done.queued:
            log.info("digests queued: %s", done.queued)
        return True
