"""Keepalive pings for every live socket of a process, from one timer.

The server pings each WebSocket every `ws_heartbeat_seconds`, so that proxies see traffic on
an idle connection and a peer that vanished is found: one that leaves a ping unanswered until
its next one is due is closed with 1011 ("keepalive ping timeout"), as uvicorn does.

uvicorn pings from timers of each socket's own: one per ping, another for the pong's
deadline, cancelled and scheduled again when the pong comes. A process holding 16,000 idle
sockets makes 800 pings a second, and the timers cost more than the pings. Here one timer
per process ticks every `TICK_SECONDS`; sockets are dealt to the ticks of an interval in turn,
so each tick pings about the same number (80 of 16,000 at the default 20 s), and a tick
checks the pong of the ping it sent one interval before just as it sends the next. The socket is
uvicorn's own in everything else.
"""

from __future__ import annotations

import asyncio
import struct
import weakref
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.frames import Frame
from websockets.protocol import State

TICK_SECONDS = 0.1  # short, so that a tick pings a small share and holds the loop briefly


class Heartbeat:
    """The pinging of one event loop's sockets: a slot per tick of an interval, pinged in turn."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self.loop, self.interval = loop, interval
        self.ticks = max(1, round(interval / TICK_SECONDS))
        self.slots: list[dict[Socket, None]] = [{} for _ in range(self.ticks)]
        self.dealt = 0  # the slot the next socket joins
        self.beats = 0  # ticks so far: the slot of the next one, and the payload of its pings
        self.timer: asyncio.TimerHandle | None = None
        self.started = 0.0

    def add(self, socket: Socket) -> None:
        socket.slot = self.dealt
        self.slots[self.dealt][socket] = None
        self.dealt = (self.dealt + 1) % self.ticks
        if self.timer is None:
            self.started, self.beats = self.loop.time(), 0
            self._schedule()

    def discard(self, socket: Socket) -> None:
        if socket.slot is not None:
            self.slots[socket.slot].pop(socket, None)
            socket.slot = None

    def _schedule(self) -> None:
        # on a fixed grid from the start, so that a slow tick does not push back the next ones
        due = self.started + (self.beats + 1) * self.interval / self.ticks
        self.timer = self.loop.call_at(due, self._tick)

    def _tick(self) -> None:
        slot = self.slots[self.beats % self.ticks]
        payload = struct.pack("!I", self.beats & 0xFFFFFFFF)
        self.beats += 1
        for socket in list(slot):
            socket.beat(payload)
        if any(self.slots):
            self._schedule()
        else:
            self.timer = None  # nothing to ping: the next socket starts it again


_heartbeats: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Heartbeat] = (
    weakref.WeakKeyDictionary()
)


def heartbeat_of(loop: asyncio.AbstractEventLoop, interval: float) -> Heartbeat:
    beat = _heartbeats.get(loop)
    if beat is None or beat.interval != interval:
        beat = _heartbeats[loop] = Heartbeat(loop, interval)
    return beat


class Socket(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket, pinged by its loop's `Heartbeat`, not by timers of its own."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slot: int | None = None
        self.heartbeat: Heartbeat | None = None

    def start_keepalive(self) -> None:
        if self.ping_interval is not None and self.ping_interval > 0:
            self.heartbeat = heartbeat_of(self.loop, self.ping_interval)
            self.heartbeat.add(self)

    def stop_keepalive(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.discard(self)
            self.heartbeat = None
        self.pending_ping_payload = None

    def beat(self, payload: bytes) -> None:
        """Its tick: a ping still unanswered ends the connection; otherwise, the next ping."""
        if self.close_sent or self.transport.is_closing() or self.conn.state is not State.OPEN:
            return
        if self.pending_ping_payload is not None:
            self.stop_keepalive()
            self.keepalive_timeout()
            return
        self.pending_ping_payload = payload
        self.conn.send_ping(payload)
        self.transport.write(b"".join(self.conn.data_to_send()))

    def handle_pong(self, event: Frame) -> None:
        if self.pending_ping_payload is not None and event.data == self.pending_ping_payload:
            self.pending_ping_payload = None
