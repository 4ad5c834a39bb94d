"""Read marks sent over one connection: only forward progress is written, and seldom.

The connection knows the read position each conversation had after its last write. A `read`
at or below it (or below one waiting to be written) costs nothing: no transaction, no event.
A higher one waits to be written; a burst of them for one conversation becomes one write of
the highest. The first write after a quiet spell goes at once; after that one per `interval`
at most. Whatever is waiting is written before the server answers a `ping` (so a pong means
"your reads are saved") and when the connection ends, so the final position is never lost.

Writes take turns (one lock per connection): two of them never race for the same row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pigeon.core.errors import log_failure

log = logging.getLogger("pigeon.realtime")

# (conversation_id, message_id, ref) -> the position written, or None when it was refused
Write = Callable[[int, int, Any], Awaitable[int | None]]


class ReadMarks:
    def __init__(self, interval: float, write: Write) -> None:
        self.interval = interval
        self._write = write
        self.known: dict[int, int] = {}  # conversation -> read position after our last write
        self._pending: dict[int, tuple[int, Any]] = {}  # conversation -> (highest, its ref)
        self._writing: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_write = float("-inf")
        self._stopped = False

    def note(self, conversation_id: int, message_id: int, ref: Any = None) -> bool:
        """Take a read mark; False when it is no progress over what is known or waiting."""
        floor = max(
            self.known.get(conversation_id, 0),
            self._writing.get(conversation_id, 0),
            self._pending.get(conversation_id, (0, None))[0],
        )
        if message_id <= floor or self._stopped:
            return False
        self._pending[conversation_id] = (message_id, ref)
        self._schedule()
        return True

    def forget(self) -> None:
        """Forget the known positions (a membership changed: a rejoined member starts over)."""
        self.known.clear()

    def _schedule(self) -> None:
        if self._timer is not None or (self._task is not None and not self._task.done()):
            return  # a write is due, or running and will look again when it is done
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_write + self.interval - loop.time())
        self._timer = loop.call_later(delay, self._due)

    def _due(self) -> None:
        self._timer = None
        self._task = asyncio.ensure_future(self._write_due())

    async def _write_due(self) -> None:
        await self.flush()
        if self._pending and not self._stopped:
            self._task = None
            self._schedule()

    async def flush(self) -> None:
        """Write what is waiting now (one batch), after any write already running."""
        async with self._lock:
            if not self._pending:
                return
            self._last_write = asyncio.get_running_loop().time()
            batch, self._pending = self._pending, {}
            for conversation_id, (message_id, ref) in batch.items():
                self._writing[conversation_id] = message_id
                try:
                    upto = await self._write(conversation_id, message_id, ref)
                except Exception:
                    log_failure(log, "writing a read mark failed")
                    upto = None
                finally:
                    del self._writing[conversation_id]
                if upto is not None:
                    self.known[conversation_id] = max(self.known.get(conversation_id, 0), upto)

    async def close(self) -> None:
        """The connection ended: write what is waiting, then take no more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._stopped = True
        await self.flush()
