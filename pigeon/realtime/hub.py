"""The process's hub: its live connections by user, and what reaches them from the broker.

Every envelope on the events channel names its users; the hub reads that header only, and
hands the frame, as published, to this process's connections of those users and to no one
else (with each one's `unread` badge when the envelope carries totals). A `message.new`
above the message stream's position (`core.stream`: a lower id may still commit elsewhere)
waits here until an envelope on the events channel says the position passed it (by then every
envelope it covers has come round), then goes out in id order. Control messages
switch messaging off everywhere. A periodic check closes the connections of people who were
suspended (or of everyone, should the switch be off and its control message have been missed),
and keeps this process's presence alive in Redis.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import logging
from collections.abc import Iterable
from typing import Any, Literal

from pigeon.accounts import blocks, directory
from pigeon.accounts import service as accounts
from pigeon.core import events, metrics
from pigeon.core.errors import log_failure
from pigeon.core.events import Envelope, SettingChanged, SignInsRevoked
from pigeon.core.people import withheld
from pigeon.core.runtime import Runtime
from pigeon.core.switches import MESSAGING_ENABLED
from pigeon.messaging import catchup
from pigeon.messaging.events import Unread
from pigeon.realtime.connection import Close, Connection, Frame
from pigeon.realtime.frames import MessagingDisabled, PresenceData
from pigeon.realtime.frames import Presence as PresenceEvent
from pigeon.realtime.presence import LocalPresence, Presence, RedisPresence
from pigeon.realtime.tickets import Tickets
from pigeon.realtime.typing import TypingThrottle

log = logging.getLogger("pigeon.realtime")

CHECK_CHUNK = 100  # small batches: the event loop never stalls long for this


class Hub:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.settings = rt.settings
        self.dbs = rt.dbs
        self.broker = broker = rt.broker
        self.by_user: dict[int, set[Connection]] = {}
        self.typing = TypingThrottle(self.settings.typing_seconds, rt.clock)
        self.check_interval = 1.0
        self.presence: Presence
        redis = getattr(broker, "redis", None)
        if redis is not None:
            self.presence = RedisPresence(
                redis,
                self.settings.redis_prefix,
                ttl_seconds=max(3.0, self.settings.ws_heartbeat_seconds * 3),
            )
        else:
            self.presence = LocalPresence()
        self.tickets = Tickets(self.settings, rt.tokens, redis=redis)
        self._checker: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.stopping = False
        self._closing: list[asyncio.Task[None]] = []
        # connection set-up (auth, hello) a few at a time: a reconnect storm must not starve sends
        self.admission = asyncio.Semaphore(16)
        self._latest_seen = 0
        self._latest_db = (0.0, 0)
        self.stream = rt.stream
        self.ordered = rt.stream.ordered  # SQLite: nothing ever waits
        # (message id, arrival, envelope) above the stream's position, whoever it is for: one
        # who connects meanwhile resumes only up to the position, and gets it live
        self._parked: list[tuple[int, int, Envelope]] = []
        self._arrivals = itertools.count()
        self._parked_since = 0.0
        # the position as the events channel told it, which parked envelopes wait for. The
        # stream's own can be ahead of it: this process learns the position its release made
        # when the release returns, before the envelopes published with it have come round,
        # and one released then would overtake a lower id still on its way
        self._heard = 0

    # --- lifecycle ---

    async def start(self) -> None:
        self.broker.add_listener(self.on_broker)
        if hasattr(self.broker, "add_gap_listener"):
            self.broker.add_gap_listener(self.on_gap)
        self._checker = asyncio.ensure_future(self._check_loop())

    async def stop(self) -> None:
        """Close every connection with "going away" so clients reconnect elsewhere."""
        if self._checker is not None:
            self._checker.cancel()
        await self.gone_away()
        for task in list(self._background):
            task.cancel()
        try:
            await self.presence.close()
        except Exception:
            log_failure(log, "presence cleanup failed")

    def going_away(self) -> None:
        self.stopping = True
        for conn in self.connections():
            conn.close(*Close.GOING_AWAY)
            if conn.closer is not None:
                self._closing.append(conn.closer)

    async def gone_away(self, timeout: float = 2.0) -> None:
        """`going_away`, then wait (`timeout` at most) until every close frame is out."""
        self.going_away()
        pending = [t for t in self._closing if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def connections(self) -> list[Connection]:
        return [c for conns in self.by_user.values() for c in conns]

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- connections ---

    def register(self, conn: Connection) -> None:
        conns = self.by_user.setdefault(conn.user_id, set())
        conns.add(conn)
        conn.on_close = self.unregister
        metrics.live_connections.inc()
        if len(conns) == 1:
            self.spawn(self._online(conn.user_id))

    def unregister(self, conn: Connection) -> None:
        """Forget a connection (idempotent): as soon as it is closing, not when the peer is gone."""
        conns = self.by_user.get(conn.user_id)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        metrics.live_connections.dec()
        if not conns:
            del self.by_user[conn.user_id]
            if not self.stopping:
                self.spawn(self._offline(conn.user_id))

    # --- delivery ---

    async def on_broker(self, channel: str, payload: bytes) -> None:
        if channel == events.EVENTS_CHANNEL:
            self.deliver(payload)
        elif channel == events.CONTROL_CHANNEL:
            message = events.decode_control(payload)
            if (
                isinstance(message, SettingChanged)
                and message.key == MESSAGING_ENABLED
                and not message.value
            ):
                self.spawn(self.messaging_off())
            elif isinstance(message, SignInsRevoked):
                self.signed_out(set(message.family_ids))

    def signed_out(self, signins: set[str]) -> None:
        """Close the connections of sign-ins that just ended (signed out, or their refresh
        token was reused): their tokens no longer open anything, nor keep anything open."""
        for conn in self.connections():
            if conn.signin in signins:
                conn.close(Close.UNAUTHORIZED, "invalid_token")

    def deliver(self, payload: bytes) -> None:
        """Hand one envelope to the local connections it names; the frame is not decoded."""
        envelope = Envelope.decode(payload)
        if envelope.users:
            kind, message_id = _peek(envelope.frame)
            if message_id is None or self.ordered:
                self._hand_out(envelope, kind, message_id)
            else:  # out in id order, once settled: with the ones parked before it
                if not self._parked:
                    self._parked_since = asyncio.get_running_loop().time()
                heapq.heappush(self._parked, (message_id, next(self._arrivals), envelope))
        if envelope.upto is not None:
            self.stream.advance(envelope.upto)
            self._heard = max(self._heard, envelope.upto)
        if self._parked and self._parked[0][0] <= self._heard:
            self._release(self._heard)

    def _release(self, upto: int) -> None:
        """The stream's position moved: what was parked at or below it goes out, in id order."""
        parked = self._parked
        while parked and parked[0][0] <= upto:
            message_id, _, envelope = heapq.heappop(parked)
            self._hand_out(envelope, "message.new", message_id)
        if parked:
            self._parked_since = asyncio.get_running_loop().time()

    def _hand_out(
        self,
        envelope: Envelope,
        kind: str,
        message_id: int | None,
    ) -> None:
        if message_id is not None and message_id > self._latest_seen:
            self._latest_seen = message_id
        by_user = self.by_user
        # a connection that falls behind closes (and leaves `by_user`) while we hand out
        local = [(uid, list(by_user[uid])) for uid in envelope.users if uid in by_user]
        if not local:
            return
        frame = Frame(kind, envelope.frame.decode(), message_id, envelope.sent_at)
        unread = envelope.unread
        membership = kind == "conversation.updated"
        for uid, conns in local:
            badge = None
            if unread is not None and uid in unread:
                badge = Frame("unread", Unread.text(unread[uid], envelope.conversation_id or 0))
            for conn in conns:
                if membership and conn.reads is not None:
                    conn.reads.forget()  # someone who left and came back starts at 0 again
                conn.offer(frame)
                if badge is not None:
                    conn.offer(badge)

    async def latest_message_id(self, db: Any) -> int:
        """The newest message id, at most a second old: never above the truth, so always safe
        to resume from (anything newer reaches a registered connection live or on resume).
        Where sends commit side by side, the stream's position (nothing below it is pending)."""
        if not self.stream.ordered:
            await self.stream.start()
            return self.stream.position
        now = asyncio.get_running_loop().time()
        at, value = self._latest_db
        if now - at > 1.0:
            value = await catchup.latest_message_id(db)
            self._latest_db = (now, value)
        return max(value, self._latest_seen)

    async def messaging_off(self) -> None:
        frame = Frame(
            "messaging.disabled", MessagingDisabled.because("Messaging was switched off.")
        )
        for conn in self.connections():
            conn.send_then_close(frame, Close.FORBIDDEN, "messaging_disabled")

    async def on_gap(self) -> None:
        """Events may have been missed: have every client reconnect and resume."""
        for conn in self.connections():
            conn.close(*Close.RESUME)

    # --- presence ---

    async def _online(self, user_id: int) -> None:
        try:
            if await self.presence.came_online(user_id):
                await self._announce(user_id, "online", self.rt.clock.now())
        except Exception:
            log_failure(log, "presence (online) failed")

    async def _offline(self, user_id: int) -> None:
        try:
            if user_id in self.by_user:  # came back meanwhile
                return
            if not await self.presence.went_offline(user_id):
                return
            seen = self.rt.clock.now()
            async with self.dbs.app.write() as session:
                await accounts.touch_last_seen(session, user_id, seen)
            if user_id not in self.by_user:
                await self._announce(user_id, "offline", seen)
        except Exception:
            log_failure(log, "presence (offline) failed")

    async def _announce(
        self, user_id: int, status: Literal["online", "offline"], at: dt.datetime
    ) -> None:
        watchers = await self.watchers(user_id)
        if watchers:
            data = PresenceData(user_id=user_id, status=status, last_seen_at=at)
            await self.rt.publisher.events([(PresenceEvent(data=data), watchers, None)])

    async def watchers(self, user_id: int) -> list[int]:
        """People who share a conversation with the user and may see their presence
        (`core.people.withheld`: not across a block, not when either keeps it private)."""
        ids = await catchup.companions(self.dbs.messaging, user_id)
        if not ids:
            return []
        found = await directory.principals(self.rt, {user_id, *ids})
        subject = found.get(user_id)
        if subject is None:
            return []
        hidden = withheld(
            await blocks.get_block_edges(self.rt, user_id),
            user_id,
            subject.shows_last_seen,
            {uid: p.shows_last_seen for uid, p in found.items()},
        )
        return sorted(uid for uid in ids if uid in found and uid not in hidden)

    # --- the periodic check ---

    async def _check_loop(self) -> None:
        last_beat = 0.0
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check()
                await self._unstick()
                now = asyncio.get_running_loop().time()
                if now - last_beat >= self.settings.ws_heartbeat_seconds / 2:
                    last_beat = now
                    await self.presence.heartbeat(list(self.by_user))
                    for user_id in await self.presence.sweep():  # left by a dead process
                        await self._announce(user_id, "offline", self.rt.clock.now())
            except asyncio.CancelledError:
                raise
            except Exception:
                log_failure(log, "realtime check failed")

    async def _unstick(self) -> None:
        """Parked for a while: a process may have died holding a place in the stream; drop
        the places whose lease ended (and release what waited on them)."""
        if self._parked and asyncio.get_running_loop().time() - self._parked_since > 1.0:
            # heard with the events, after every envelope it covers: released as it comes
            await self.stream.sweep(events.position_only(self.rt.clock.now().timestamp()))

    async def check(self) -> None:
        if not self.by_user:
            return
        if not await self.rt.switches.messaging_enabled():
            await self.messaging_off()
            return
        user_ids = list(self.by_user)
        for start in range(0, len(user_ids), CHECK_CHUNK):
            chunk = user_ids[start : start + CHECK_CHUNK]
            found, now = await directory.principals(self.rt, chunk), self.rt.clock.now()
            for uid in chunk:
                who = found.get(uid)
                if who is None or who.is_suspended(now):
                    self.close_user(uid, Close.FORBIDDEN, "account_suspended")

    def close_user(self, user_id: int, code: int, reason: str) -> None:
        for conn in list(self.by_user.get(user_id, ())):
            conn.close(code, reason)

    async def is_connected(self, user_id: int) -> bool:
        """Whether the user has a live connection here or, with Redis, in any process."""
        return user_id in self.by_user or await self.presence.is_online(user_id)

    def local_users(self) -> Iterable[int]:
        return self.by_user.keys()


_MESSAGE_NEW = b'{"type":"message.new"'


def _peek(frame: bytes) -> tuple[str, int | None]:
    """The frame's type, and its message id for `message.new` (which ends the frame:
    `...,"id":N}`), without decoding the rest."""
    if frame.startswith(_MESSAGE_NEW):
        tail = frame.rpartition(b'"id":')[2]
        return "message.new", int(tail.rstrip(b"}"))
    end = frame.find(b'"', 9)
    return frame[9:end].decode(), None
