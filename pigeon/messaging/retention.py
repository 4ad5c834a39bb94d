"""Retention by tier: what leaves every participant's window is soft-deleted, then purged.

Each participant sees a message only while it is inside their own window (free 30 days,
privileged 180, privileged_plus and staff 365 by default; `visible_since` applies that to every
read). This job does the storage side: a message older than the *longest* window among its
conversation's participants is seen by nobody, so it is soft-deleted; soft-deleted messages
(by this job, by their authors or by moderators) are purged after a grace period.
Messages under an open report are never purged: moderators still need them. A purged
message's files go with it, and the run ends with the media sweep (`attachments.sweep`):
uploads no message named in time, and files no row names.
Resolved reports drop their copy of the message after the same grace period.

One process at a time runs it, under a lease in the primary database (SQLite and PostgreSQL
alike); the background task also keeps a schedule lease for most of its interval, so that a
cluster runs it once per interval, whichever process gets there first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import and_, delete, func, select, update

from pigeon.accounts import service as accounts
from pigeon.core import migrate
from pigeon.core.audit import audit
from pigeon.core.background import Periodic
from pigeon.core.db import Databases, rowcount
from pigeon.core.errors import Conflict
from pigeon.core.leases import acquire_lease, held, holder_id
from pigeon.core.runtime import Runtime
from pigeon.messaging import attachments
from pigeon.messaging.models import Conversation, Message, Participant, Report
from pigeon.messaging.reports import open_report_message_ids
from pigeon.settings import Settings

log = logging.getLogger("pigeon.retention")

LEASE = "retention"
SCHEDULE_LEASE = "retention.schedule"
CHUNK = 500

# stage, done, total: the CLI draws its progress bar from these
Progress = Callable[[str, int, int], None]


@dataclasses.dataclass
class RunResult:
    as_of: dt.datetime
    dry_run: bool
    conversations_checked: int = 0
    soft_deleted: int = 0
    purged: int = 0
    kept_for_reports: int = 0
    reports_cleared: int = 0
    conversations_purged: int = 0
    files_purged: int = 0  # attachments of the purged messages
    uploads_swept: int = 0  # uploads no message named in time
    files_swept: int = 0  # files in the store that no row named

    def counts(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["as_of"] = self.as_of.isoformat()
        return data


def _windows(settings: Settings) -> list[int]:
    return [
        settings.retention_free_days,
        settings.retention_privileged_days,
        settings.retention_privileged_plus_days,
        settings.retention_staff_days,
    ]


async def run(
    rt: Runtime,
    *,
    as_of: dt.datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    renew: Callable[[], Awaitable[None]] | None = None,
    actor_label: str = "system",
) -> RunResult:
    """One pass: soft-delete what nobody may see, purge what has been deleted long enough."""
    dbs, settings = rt.dbs, rt.settings
    now = as_of or rt.clock.now()
    result = RunResult(as_of=now, dry_run=dry_run)
    await _soft_delete(dbs, settings, now, result, progress, renew)
    await _purge(rt, now, result, progress, renew)
    if not dry_run:
        swept = await attachments.sweep(rt, now=now)
        result.uploads_swept, result.files_swept = swept.unattached, swept.orphans
    async with rt.uow_scope() as uow:
        audit(
            uow,
            "retention.run",
            actor_id=None,
            actor_label=actor_label,
            target_type="retention",
            data=result.counts(),
        )
    return result


# --- soft delete ---


async def _candidates(dbs: Databases, settings: Settings, now: dt.datetime) -> list[int]:
    """Conversations holding a live message older than the shortest window, or deleted ones."""
    oldest_visible = now - dt.timedelta(days=min(_windows(settings)))
    async with dbs.messaging.read() as session:
        # the newest message older than the shortest window, by the index on created_at; ids
        # follow time, so the live ones older than the window have ids at or below its (one
        # that a clock step or a slow commit put above it waits for the next run). Without that
        # bound SQLite read every live message to find none, every hour
        newest_old = await session.scalar(
            select(Message.id)
            .where(Message.created_at < oldest_visible)
            .order_by(Message.created_at.desc())
            .limit(1)
        )
        old: set[int] = set()
        if newest_old is not None:
            old = set(
                await session.scalars(
                    select(Message.conversation_id)
                    .distinct()
                    .where(
                        Message.deleted_at.is_(None),
                        Message.id <= newest_old,
                        Message.created_at < oldest_visible,
                    )
                )
            )
        gone = set(
            await session.scalars(
                select(Conversation.id)
                .where(Conversation.deleted_at.is_not(None))
                .where(
                    select(Message.id)
                    .where(Message.conversation_id == Conversation.id, Message.deleted_at.is_(None))
                    .exists()
                )
            )
        )
    return sorted(old | gone)


async def _cutoffs(
    dbs: Databases,
    settings: Settings,
    now: dt.datetime,
    conv_ids: Sequence[int],
    days_of: dict[int, int],
) -> dict[int, dt.datetime]:
    """Per conversation, the creation time before which no participant may see a message."""
    async with dbs.messaging.read() as session:
        rows = (
            await session.execute(
                select(Participant.conversation_id, Participant.user_id, Conversation.deleted_at)
                .select_from(Conversation)
                .outerjoin(Participant, Participant.conversation_id == Conversation.id)
                .where(Conversation.id.in_(conv_ids))
            )
        ).all()
    unknown = {r.user_id for r in rows if r.user_id is not None} - days_of.keys()
    if unknown:
        async with dbs.app.read() as session:
            users = await accounts.users_by_ids(session, unknown)
        for uid in unknown:
            u = users.get(uid)
            days_of[uid] = settings.retention_days(u.tier, u.role) if u else 0
    longest: dict[int, int] = {cid: 0 for cid in conv_ids}  # nobody left: nobody sees it
    deleted = set()
    for r in rows:
        if r.deleted_at is not None:
            deleted.add(r.conversation_id)
        elif r.user_id is not None:
            longest[r.conversation_id] = max(longest[r.conversation_id], days_of[r.user_id])
    return {
        cid: now if cid in deleted else now - dt.timedelta(days=days)
        for cid, days in longest.items()
    }


async def _soft_delete(
    dbs: Databases,
    settings: Settings,
    now: dt.datetime,
    result: RunResult,
    progress: Progress | None,
    renew: Callable[[], Awaitable[None]] | None,
) -> None:
    conv_ids = await _candidates(dbs, settings, now)
    days_of: dict[int, int] = {}
    total = len(conv_ids)
    if progress:
        progress("soft-delete", 0, total)
    for start in range(0, total, CHUNK):
        chunk = conv_ids[start : start + CHUNK]
        cutoffs = await _cutoffs(dbs, settings, now, chunk, days_of)
        by_cutoff: dict[dt.datetime, list[int]] = {}
        for cid, cutoff in cutoffs.items():
            by_cutoff.setdefault(cutoff, []).append(cid)
        async with dbs.messaging.write() as session:
            for cutoff, ids in by_cutoff.items():
                expired = and_(
                    Message.conversation_id.in_(ids),
                    Message.created_at < cutoff,
                    Message.deleted_at.is_(None),
                )
                if result.dry_run:
                    n = await session.scalar(
                        select(func.count()).select_from(Message).where(expired)
                    )
                else:
                    n = rowcount(
                        await session.execute(update(Message).where(expired).values(deleted_at=now))
                    )
                result.soft_deleted += int(n or 0)
            if not result.dry_run:
                await _recount_unread(session, chunk, days_of, now)
        result.conversations_checked += len(chunk)
        if progress:
            progress("soft-delete", result.conversations_checked, total)
        if renew:
            await renew()


async def _recount_unread(
    session: Any, conv_ids: list[int], days_of: dict[int, int], now: dt.datetime
) -> None:
    """Unread counts must not include messages that left their reader's window.

    One grouped count per window length (there are at most four), for the participants of these
    conversations who have something unread; a count only ever goes down here.
    """
    rows = (
        (
            await session.execute(
                select(Participant.user_id)
                .where(Participant.conversation_id.in_(conv_ids), Participant.unread_count > 0)
                .distinct()
            )
        )
        .scalars()
        .all()
    )
    by_days: dict[int, list[int]] = {}
    for uid in rows:
        by_days.setdefault(days_of.get(uid, 0), []).append(uid)
    for days, user_ids in by_days.items():
        visible = and_(
            Message.conversation_id == Participant.conversation_id,
            Message.id > Participant.last_read_message_id,
            Message.sender_id != Participant.user_id,
            Message.deleted_at.is_(None),
            Message.created_at >= now - dt.timedelta(days=days),
        )
        counts = (
            await session.execute(
                select(
                    Participant.conversation_id,
                    Participant.user_id,
                    Participant.unread_count,
                    func.count(Message.id),
                )
                .select_from(Participant)
                .outerjoin(Message, visible)
                .where(
                    Participant.conversation_id.in_(conv_ids),
                    Participant.user_id.in_(user_ids),
                    Participant.unread_count > 0,
                )
                .group_by(
                    Participant.conversation_id, Participant.user_id, Participant.unread_count
                )
            )
        ).all()
        for conv_id, uid, before, left in counts:
            if left < before:
                await session.execute(
                    update(Participant)
                    .where(Participant.conversation_id == conv_id, Participant.user_id == uid)
                    .values(unread_count=left)
                )


# --- purge ---


async def _purge(
    rt: Runtime,
    now: dt.datetime,
    result: RunResult,
    progress: Progress | None,
    renew: Callable[[], Awaitable[None]] | None,
) -> None:
    dbs, settings = rt.dbs, rt.settings
    before = now - dt.timedelta(days=settings.retention_grace_days)
    due = and_(Message.deleted_at.is_not(None), Message.deleted_at < before)
    reported = open_report_message_ids()
    async with dbs.messaging.read() as session:
        total = int(
            await session.scalar(
                select(func.count()).select_from(Message).where(due, Message.id.not_in(reported))
            )
            or 0
        )
        result.kept_for_reports = int(
            await session.scalar(
                select(func.count()).select_from(Message).where(due, Message.id.in_(reported))
            )
            or 0
        )
    if progress:
        progress("purge", 0, total)
    if result.dry_run:
        result.purged = total
        if progress:
            progress("purge", total, total)
    else:
        while True:
            # in no order: what a chunk deletes leaves the search, so each one reads the
            # index on deleted_at from its start, never the whole table
            async with dbs.messaging.read() as session:
                ids = list(
                    await session.scalars(
                        select(Message.id).where(due, Message.id.not_in(reported)).limit(CHUNK)
                    )
                )
            if not ids:
                break
            async with rt.uow_scope() as uow:
                gone = list(
                    await uow.messaging.scalars(
                        delete(Message)
                        .where(Message.id.in_(ids), due, Message.id.not_in(reported))
                        .returning(Message.id)
                    )
                )
                result.files_purged += await attachments.drop_for_messages(uow, rt.media, gone)
            result.purged += len(gone)
            if progress:
                progress("purge", min(result.purged, total), total)
            if renew:
                await renew()
            if not gone:  # restored or reported meanwhile: the next run looks again
                break
    await _purge_reports_and_conversations(dbs, before, result)


async def _purge_reports_and_conversations(
    dbs: Databases, before: dt.datetime, result: RunResult
) -> None:
    stale_copy = and_(
        Report.status == "resolved", Report.resolved_at < before, Report.body_copy != ""
    )
    empty_deleted = and_(
        Conversation.deleted_at.is_not(None),
        Conversation.deleted_at < before,
        ~select(Message.id).where(Message.conversation_id == Conversation.id).exists(),
    )
    async with dbs.messaging.write() as session:
        if result.dry_run:
            result.reports_cleared = int(
                await session.scalar(select(func.count()).select_from(Report).where(stale_copy))
                or 0
            )
            result.conversations_purged = int(
                await session.scalar(
                    select(func.count()).select_from(Conversation).where(empty_deleted)
                )
                or 0
            )
            return
        cleared = await session.execute(update(Report).where(stale_copy).values(body_copy=""))
        result.reports_cleared = rowcount(cleared)
        await session.execute(
            delete(Participant).where(
                Participant.conversation_id.in_(select(Conversation.id).where(empty_deleted))
            )
        )
        purged = await session.execute(delete(Conversation).where(empty_deleted))
        result.conversations_purged = rowcount(purged)


# --- one at a time ---


async def run_exclusive(
    rt: Runtime,
    *,
    holder: str | None = None,
    lease_seconds: float = 300,
    **kwargs: Any,
) -> RunResult:
    """`run` under the lease; Conflict when another process is running it."""
    busy = Conflict("Another process is running retention right now.", code="retention_running")
    async with held(
        rt.dbs.app, LEASE, holder or holder_id(), lease_seconds, clock=rt.clock, busy=busy
    ) as renew:
        return await run(rt, renew=renew, **kwargs)


async def scheduled_run(rt: Runtime, holder: str) -> RunResult | None:
    """The background task's turn: at most one run per interval across every process.

    A second lease, kept for most of the interval, spaces the runs out; the running lease
    above still keeps a scheduled run and a CLI run from overlapping.
    """
    if not await migrate.exists(rt.dbs.messaging):  # messaging never switched on
        return None
    interval = rt.settings.retention_interval_seconds
    now = rt.clock.now()
    if not await acquire_lease(rt.dbs.app, SCHEDULE_LEASE, holder, max(interval * 0.9, 1), now=now):
        return None
    return await run_exclusive(rt, holder=holder)


class Schedule(Periodic):
    """Runs retention every `retention_interval_seconds` (0 turns it off) in the background."""

    name = "retention"

    def interval(self) -> float:
        return self.settings.retention_interval_seconds

    def first_delay(self) -> float:
        return min(self.interval(), 300)  # not at once: a restart loop must not run it each time

    async def run_once(self, holder: str) -> bool:
        found = await scheduled_run(self.rt, holder)
        if found is None:
            return False
        log.info("retention run: %s", found.counts())
        return True
