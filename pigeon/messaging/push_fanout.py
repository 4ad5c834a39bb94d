"""Web Push for people who are away: after a message commits, each recipient with no live
connection gets a content-free push on each of their devices.

Why a cursor over the messages table, not the broker's events: the table is the durable
record of every send, and message ids commit in order (one writer on SQLite, the order lock
on PostgreSQL: `send_tx`), so reading "ids above the cursor" after each pass never skips a
message, whatever the broker dropped and across restarts of every process. The broker is only
the doorbell: a `message.new` passing through wakes the sender at once (else it looks every
`push_interval_seconds`). One process at a time sends (a lease, as for email), so a push goes
out once however many processes run. The cursor moves after a pass's pushes are done: a process
that dies mid-pass repeats that pass (a duplicate replaces the first on the device, same tag
and Topic), rather than losing it. Messages older than `push_max_age_seconds` when first seen
(after downtime) are passed over: a stale alert helps nobody.

Who gets one (the rules, in `recipients_of` and `_pass`):

| rule | where |
| --- | --- |
| not the sender | the query |
| not a muted conversation, not a message request they have not accepted | the query |
| not a deleted conversation or message | the query |
| in a group, not someone who blocked the sender | `policy.blockers_of` |
| not someone connected right now (their open page shows it; hidden, it notifies) | `is_connected` |
| not someone suspended, deleted, or with push turned off | directory, `push.targets` |
| a device hears about a conversation at most once per `push_coalesce_seconds` | `_recent` |

The payload is `{"type": "message", "conversation_id": N}`: never text, names or ids of people.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import bindparam, select

from pigeon.accounts import blocks, directory
from pigeon.core import events, migrate
from pigeon.core.background import Background
from pigeon.core.db import Database
from pigeon.core.errors import log_failure
from pigeon.core.leases import acquire_lease, holder_id, release_lease
from pigeon.core.runtime import Runtime
from pigeon.messaging import catchup, policy
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.push import service as push
from pigeon.push.models import PushSubscription
from pigeon.push.sender import Device, Pusher

log = logging.getLogger("pigeon.push")

LEASE = "push"
CURSOR = "messages"
BATCH = 500
_MESSAGE_NEW = b'{"type":"message.new"'

IsConnected = Callable[[int], Awaitable[bool]]


@dataclasses.dataclass(slots=True)
class NewMessage:
    id: int
    conversation_id: int
    sender_id: int
    kind: str
    created_at: dt.datetime
    recipients: list[int]


# built once: an IN of literal values built per pass (five a second under load) leaves a
# reference cycle behind for the collector; an expanding parameter does not
_TOLD = select(Participant.conversation_id, Participant.user_id).where(
    Participant.conversation_id.in_(bindparam("convs", expanding=True)),
    Participant.muted.is_(False),
    Participant.request_pending.is_(False),
)


async def recipients_of(
    db: Database, after_id: int, limit: int = BATCH, *, upto: int | None = None
) -> tuple[list[NewMessage], int]:
    """The next messages above `after_id`, each with who may be told of it (everyone in the
    conversation but the sender, who neither muted it nor has it as a pending request), and
    the id to move the cursor to (the last looked at, told of or not). Never above `upto`,
    the message stream's position: the cursor must not pass a lower id still committing."""
    above = select(Message.id).where(Message.id > after_id)
    if upto is not None:
        above = above.where(Message.id <= upto)
    async with db.read() as session:
        ids = list(await session.scalars(above.order_by(Message.id).limit(limit)))
        if not ids:
            return [], after_id
        rows = await session.execute(
            select(
                Message.id,
                Message.conversation_id,
                Message.sender_id,
                Conversation.kind,
                Message.created_at,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.id > after_id, Message.id <= ids[-1])
            .where(Message.deleted_at.is_(None), Conversation.deleted_at.is_(None))
            .order_by(Message.id)
        )
        found = [NewMessage(row[0], row[1], row[2], row[3], row[4], []) for row in rows]
        members: dict[int, list[int]] = {}
        if found:
            convs = sorted({m.conversation_id for m in found})
            listed = await session.execute(_TOLD, {"convs": convs})
            for conversation_id, user_id in listed:
                members.setdefault(conversation_id, []).append(user_id)
    for message in found:
        people = members.get(message.conversation_id, [])
        message.recipients = [uid for uid in people if uid != message.sender_id]
    return found, ids[-1]


# how long a doorbell waits for the rest of a burst: pushes go to people who are away, so a
# fifth of a second is nothing to them, and under load a pass per message cost a tenth of
# the server's time per send
GATHER_SECONDS = 0.2


class PushFanout(Background):
    name = "push"

    def __init__(self, rt: Runtime, is_connected: IsConnected) -> None:
        super().__init__(rt)
        self.is_connected = is_connected
        self.pusher = Pusher(rt.settings)
        self._wake = asyncio.Event()
        self._recent: dict[tuple[int, int], float] = {}  # (device, conversation) -> when
        self._held_until = 0.0
        self._tried = False  # asked for the lease at least once

    def enabled(self) -> bool:
        return self.settings.push_interval_seconds > 0

    def start(self) -> None:
        if self.enabled():
            self.rt.broker.add_listener(self.on_broker)
        super().start()

    async def on_broker(self, channel: str, payload: bytes) -> None:
        """The doorbell: a message was committed somewhere."""
        if channel == events.EVENTS_CHANNEL and payload.partition(b"\n")[2].startswith(
            _MESSAGE_NEW
        ):
            self._wake.set()

    async def _loop(self) -> None:
        holder, interval = holder_id(), self.settings.push_interval_seconds
        lease = max(30.0, interval * 6)
        woken = True  # at start: try for the lease at once
        try:
            while True:
                try:
                    if await self._ours(holder, lease, woken=woken):
                        while await self.run_pass() >= BATCH:
                            pass
                except Exception:
                    log_failure(log, "push fan-out failed")
                woken = False
                try:  # not wait_for: on 3.11 it may swallow a cancel that meets the doorbell
                    async with asyncio.timeout(interval):
                        await self._wake.wait()
                    woken = True
                except TimeoutError:
                    pass
                if woken:  # a burst rings many times: one pass (two commits) serves all of it
                    await asyncio.sleep(GATHER_SECONDS)
                self._wake.clear()
        finally:
            if self._held_until:  # let another process take over at once
                with contextlib.suppress(Exception):
                    await release_lease(self.rt.dbs.app, LEASE, holder)

    async def _ours(self, holder: str, lease: float, *, woken: bool) -> bool:
        """Whether this process sends now: it holds the lease (renewed when half of it has
        run), or takes it. A process without it tries on its timer, not on every message."""
        clock = time.monotonic()
        if clock < self._held_until - lease / 2:
            return True
        if woken and clock >= self._held_until and self._tried:
            return False
        self._tried = True
        now = self.rt.clock.now()
        if await acquire_lease(self.rt.dbs.app, LEASE, holder, lease, now=now):
            self._held_until = clock + lease
            return True
        self._held_until = 0.0
        return False

    async def prepare(self) -> None:
        """Start the cursor at the newest message on a first run: pushes are about what is
        sent from now on, never the history."""
        # no messaging database yet (messaging never switched on): the cursor starts once it
        # exists, at the first pass after that
        if self.enabled() and await migrate.exists(self.rt.dbs.messaging):
            latest = await catchup.latest_message_id(self.rt.dbs.messaging)
            await push.start_cursor(self.rt.dbs.app, CURSOR, latest)

    async def run_pass(self) -> int:
        """Push for the messages above the cursor; how far it moved (at least as many as the
        messages looked at, so `BATCH` or more means there may be more)."""
        if not await self.rt.switches.messaging_enabled():
            return 0  # nothing is sent; and while it is switched on, its database may be made
        app = self.rt.dbs.app
        after = await push.read_cursor(app, CURSOR)
        if after is None:
            await self.prepare()
            return 0
        batch, last = await recipients_of(self.rt.dbs.messaging, after, upto=self.rt.stream.upto())
        if last > after:
            await self._pass(batch)
            await push.move_cursor(app, CURSOR, last)
        return last - after if last > after else 0

    async def _pass(self, batch: list[NewMessage]) -> None:
        now = self.rt.clock.now()
        oldest = now - dt.timedelta(seconds=self.settings.push_max_age_seconds)
        wanted: dict[int, set[int]] = {}  # person -> conversations to tell them about
        for message in batch:
            if message.created_at < oldest or not message.recipients:
                continue
            people = set(message.recipients)
            if message.kind == "group":
                edges = await blocks.get_block_edges(self.rt, message.sender_id)
                people -= policy.blockers_of(message.sender_id, edges)
            for uid in people:
                wanted.setdefault(uid, set()).add(message.conversation_id)
        if not wanted:
            return
        devices = await self._devices_of_away(wanted, now)
        sends = []
        clock = time.monotonic()
        self._forget_old(clock)
        for row in devices:
            for conversation_id in sorted(wanted[row.user_id]):
                key = (row.id, conversation_id)
                if clock - self._recent.get(key, -1e9) < self.settings.push_coalesce_seconds:
                    continue
                self._recent[key] = clock
                sends.append((Device.of(row), conversation_id))
        outcomes = await asyncio.gather(
            *(
                self.pusher.push(
                    device,
                    {"type": "message", "conversation_id": conversation_id},
                    topic=f"c{conversation_id}",
                )
                for device, conversation_id in sends
            )
        )
        delivered = {d.id for (d, _), o in zip(sends, outcomes, strict=True) if o == "sent"}
        gone = {d.id for (d, _), o in zip(sends, outcomes, strict=True) if o == "gone"}
        await push.record(self.rt.dbs.app, delivered=delivered, gone=gone, now=now)

    async def _devices_of_away(
        self, wanted: dict[int, set[int]], now: dt.datetime
    ) -> list[PushSubscription]:
        """The devices of those people who have push on, are not suspended and have no live
        connection. Devices first: most people have none, and nothing more is asked of them."""
        async with self.rt.dbs.app.read() as session:
            devices = await push.targets(session, wanted)
        owners = {row.user_id for row in devices}
        found = await directory.principals(self.rt, owners)
        away = {
            uid
            for uid in sorted(owners)
            if uid in found
            and not found[uid].is_suspended(now)
            and not await self.is_connected(uid)
        }
        return [row for row in devices if row.user_id in away]

    def _forget_old(self, clock: float) -> None:
        window = self.settings.push_coalesce_seconds
        if len(self._recent) > 10_000 or window == 0:
            self._recent = {k: t for k, t in self._recent.items() if clock - t < window}
