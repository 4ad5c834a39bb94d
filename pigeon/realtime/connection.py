"""One live WebSocket: a bounded outbound queue drained by its own sender task.

Delivery into a connection never waits: `offer` either queues the frame or, when the queue is
full, marks the connection as a slow consumer and closes it, so one stalled reader can never
hold up anyone else. A client that was closed resumes from the last message id it saw.

While a catch-up replay runs, live frames are parked in `pending` and released after the
replayed messages, skipping any message the connection has already been given.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import dataclasses
import logging
import socket
from array import array
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from pigeon.core import metrics
from pigeon.core.clock import Clock

if TYPE_CHECKING:
    from pigeon.realtime.reads import ReadMarks

log = logging.getLogger("pigeon.realtime")

SEEN_LIMIT = 4096  # message ids remembered per connection, to drop replay/live overlap
WIDE = 0xFFFF_FFFF  # the largest id a 32-bit memory holds
KERNEL_SEND_BUFFER = 64 * 1024
CLOSE_TIMEOUT = 60.0  # a stalled peer gets its close frame once it reads, or heartbeats end it


class Close:
    """Close codes and reasons a client sees."""

    GOING_AWAY = (1001, "server shutting down")
    RESUME = (1012, "reconnect and resume")
    TRY_AGAIN = (1013, "database_unavailable")
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    SLOW = (4008, "slow consumer")
    TOO_MANY = (4008, "too many frames")


@dataclasses.dataclass(slots=True, frozen=True)
class Frame:
    type: str
    text: str
    message_id: int | None = None  # set for message.new: dedupe and latency
    sent_at: float | None = None
    close: tuple[int, str] | None = None  # close the connection once this frame is sent


_delivered: dict[str, Any] = {}


def _count(kind: str) -> None:
    child = _delivered.get(kind)
    if child is None:
        child = _delivered[kind] = metrics.events_delivered.labels(type=kind)
    child.inc()


def _find_transport(send: Any, depth: int = 0) -> Any:
    owner = getattr(send, "__self__", None)
    if owner is not None and hasattr(owner, "transport"):
        return owner.transport
    if depth < 4:
        for cell in getattr(send, "__closure__", None) or ():
            contents = cell.cell_contents
            if callable(contents):
                found = _find_transport(contents, depth + 1)
                if found is not None:
                    return found
    return None


class RecentIds:
    """The highest `limit` ids added, in one sorted array of machine integers: membership by
    bisection, and the lowest leaves first. Ids come mostly in increasing order, so the
    highest are the latest, and an insert is mostly an append. A set and a deque of Python
    ints cost about 100 bytes an id, so a busy connection's 4,096 came to some 400 KiB and a
    thousand connections grew by hundreds of MiB over a long run; this is 4 bytes an id while
    ids fit in 32 bits, and 8 from the first that does not."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._ids = array("I")

    def __contains__(self, value: int) -> bool:
        i = bisect.bisect_left(self._ids, value)
        return i < len(self._ids) and self._ids[i] == value

    def add(self, value: int) -> bool:
        """Remember `value`; False when it already was. Below all the ids a full memory holds,
        it is not kept (as an id that left would not be)."""
        i = bisect.bisect_left(self._ids, value)
        if i < len(self._ids) and self._ids[i] == value:
            return False
        if value > WIDE and self._ids.typecode == "I":
            self._ids = array("q", self._ids)
        if len(self._ids) >= self.limit:
            if i == 0:
                return True
            del self._ids[0]
            i -= 1
        self._ids.insert(i, value)
        return True

    def discard(self, value: int) -> None:
        """Forget `value`."""
        i = bisect.bisect_left(self._ids, value)
        if i < len(self._ids) and self._ids[i] == value:
            del self._ids[i]


class Connection:
    def __init__(
        self,
        ws: WebSocket,
        user_id: int,
        queue_size: int,
        *,
        clock: Clock,
        signin: str | None = None,
    ) -> None:
        self.ws = ws
        self.clock = clock
        self.user_id = user_id
        self.signin = signin  # the sign-in (token family) it came through: it ends with it
        self.queue_size = queue_size
        self.queue: asyncio.Queue[Frame] = asyncio.Queue(queue_size)
        self.pending: deque[Frame] | None = None  # not None while a replay runs
        self.closed = False
        self.closing = False  # a last frame is on its way, then the close
        self._seen: RecentIds | None = None
        self._sender: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None
        self.resumer: asyncio.Task[None] | None = None  # a running catch-up
        self.reads: ReadMarks | None = None  # read marks the client sent, from its first one
        self.on_close: Callable[[Connection], None] | None = None

    # --- inbound from the hub ---

    def offer(self, frame: Frame) -> None:
        """Queue a frame without waiting; a full queue closes the connection (slow consumer)."""
        if self.closed:
            return
        if self.pending is not None:
            if len(self.pending) >= self.queue_size * 4:
                self._slow()
            else:
                self.pending.append(frame)
            return
        if frame.message_id is not None and not self.remember(frame.message_id):
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self._slow()

    def remember(self, message_id: int) -> bool:
        """Note a message as given to this connection; False when it already was."""
        if self._seen is None:
            self._seen = RecentIds(SEEN_LIMIT)
        return self._seen.add(message_id)

    def _slow(self) -> None:
        metrics.slow_consumers.inc()
        log.info("closing a slow consumer (user %s)", self.user_id)
        self.close(*Close.SLOW)

    # --- replay ---

    def begin_replay(self) -> None:
        """Park live frames from now on, including those queued but not yet sent.

        Parked messages are forgotten so that the replay sends them in their place; when the
        parked frames are released afterwards, whatever the replay already gave is skipped.
        """
        parked: deque[Frame] = deque()
        while not self.queue.empty():
            frame = self.queue.get_nowait()
            if frame.message_id is not None and self._seen is not None:
                self._seen.discard(frame.message_id)
            parked.append(frame)
        self.pending = parked

    async def put(self, frame: Frame) -> bool:
        """Queue a replayed frame, waiting for room; False once the connection is closed."""
        if self.closed:
            return False
        if frame.message_id is not None and not self.remember(frame.message_id):
            return True
        await self.queue.put(frame)
        return not self.closed

    async def end_replay(self) -> None:
        """Release the parked live frames after the replayed ones, in order, then go live."""
        assert self.pending is not None
        while self.pending:
            frame = self.pending.popleft()
            if frame.message_id is not None and not self.remember(frame.message_id):
                continue
            await self.queue.put(frame)
            if self.closed:
                return
        self.pending = None  # no await between the last check and this: nothing slips by

    def abandon_replay(self) -> None:
        """Stop a running replay (the connection is closing): what it parked goes out now, as
        far as the queue has room, so the client still sees the answers it was given."""
        if self.resumer is not None:
            self.resumer.cancel()
        parked, self.pending = self.pending, None
        for frame in parked or ():
            if frame.message_id is not None and not self.remember(frame.message_id):
                continue
            try:
                self.queue.put_nowait(frame)
            except asyncio.QueueFull:
                return

    # --- outbound to the socket ---

    def start(self) -> None:
        self._cap_kernel_buffer()
        self._sender = asyncio.ensure_future(self._send_loop())

    def _cap_kernel_buffer(self) -> None:
        """Keep the kernel's send buffer for this socket small (best effort), so a peer that
        stops reading fills our bounded queue after a few hundred KiB rather than megabytes.
        The server's transport sits behind the ASGI `send` callable (maybe wrapped)."""
        with contextlib.suppress(Exception):
            transport = _find_transport(self.ws._send)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, KERNEL_SEND_BUFFER)

    async def _send_loop(self) -> None:
        ws, observe, queue, clock = (
            self.ws,
            metrics.delivery_latency.observe,
            self.queue,
            self.clock,
        )
        try:
            while True:
                frame = await queue.get()
                await ws.send({"type": "websocket.send", "text": frame.text})
                _count(frame.type)
                if frame.sent_at is not None and frame.type == "message.new":
                    observe(max(0.0, clock.now().timestamp() - frame.sent_at))
                if frame.close is not None:
                    self.close(*frame.close)
                    return
        except asyncio.CancelledError:
            raise
        except Exception:  # the peer went away; the receiver notices and cleans up
            self.close(1011, "", send=False)

    async def send_now(self, data: str) -> None:
        """Send directly, before the sender task runs (the hello frame)."""
        await self.ws.send({"type": "websocket.send", "text": data})

    def close(self, code: int, reason: str, *, send: bool = True) -> None:
        """Stop sending and close the socket in the background (idempotent, never waits)."""
        if self.closed:
            return
        self.closed = True
        if self.on_close is not None:
            self.on_close(self)
        for task in (self._sender, self.resumer):
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        if send:
            self.closer = asyncio.ensure_future(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self.ws.send({"type": "websocket.close", "code": code, "reason": reason}),
                CLOSE_TIMEOUT,
            )

    def send_then_close(self, frame: Frame, code: int, reason: str) -> None:
        """Tell the client why, after what is already queued, then close (never waits)."""
        if self.closed or self.closing:
            return
        self.closing = True
        try:
            self.queue.put_nowait(dataclasses.replace(frame, close=(code, reason)))
        except asyncio.QueueFull:
            self.close(code, reason)
            return
        # a peer that does not read never sees it: close anyway, shortly
        asyncio.get_running_loop().call_later(2.0, self.close, code, reason)

    async def finish(self) -> None:
        """After the socket is gone: stop the tasks this connection started."""
        self.closed = True
        if self.on_close is not None:
            self.on_close(self)
        for task in (self._sender, self.resumer):
            if task is not None and not task.done():
                task.cancel()
