"""The message stream's position: the id up to which every message is settled.

A client resumes from the highest message id it saw (`resume {last_message_id}`), so it must
never see an id while a lower one may still commit: it would skip that one on its next resume.

- **SQLite** commits sends from one writer thread, in id order: every committed id is settled
  (`Ordered`), nothing waits.
- **PostgreSQL** commits sends concurrently, from every process, and an id handed out may
  commit after a higher one. Each send *reserves a place* before its id is handed out and
  *releases* it once its transaction has committed or rolled back. The place is a marker one
  above the highest id released so far: an id handed out after the reservation is above every
  id released before it, so it is at or above its marker. The position is one below the lowest
  place still reserved, or the highest id released when none is. Every id at or below the
  position has committed or never will.

If Redis cannot be reached, a send goes on without a place (`Ticket.placed` false) and takes
its turn alone instead (the send path's exclusive lock, which every placed send holds shared),
and reads are not capped until Redis answers again: slower, never out of order.

A message is shown only at or below the position: live (`realtime.hub` holds a newer
`message.new` until the position passes it), in history and on resume (reads stop at it), in
`hello` (its `latest_message_id` is the position), and to its sender (the send answers once
the position has reached it). No send waits for another to begin: only, after committing, for
the lower ids still committing, which takes about as long as a commit.

One process without Redis keeps the places in memory (`LocalStream`); with Redis every process
keeps them in three keys, changed atomically by Lua scripts (`RedisStream`). A place is leased:
one left by a process that died is dropped once its lease ends, and a send that has held its
place for half the lease is refused before it commits (so a dropped place never commits).
Every release publishes the new position with the events it carries (or alone), so every
process learns it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from pigeon.core.gather import Gathered

log = logging.getLogger("pigeon.stream")

LEASE_SECONDS = 5.0


@dataclasses.dataclass(slots=True)
class Ticket:
    """One send's reserved place, and the id it was given once it has one."""

    token: str
    reserved_at: float  # monotonic
    lease: float = LEASE_SECONDS
    message_id: int = 0
    placed: bool = True  # False: Redis could not be reached; the send takes its turn alone
    # its message committed in a statement of its own (`send_tx.InTransaction._at_once`),
    # which checked the lease before it wrote: nothing is left to refuse
    committed: bool = False

    def left(self) -> float:
        """Seconds the send may still take before its commit: half the lease, less its age."""
        return self.lease / 2 - (time.monotonic() - self.reserved_at)

    def expired(self) -> bool:
        """Held too long to commit safely: the place may be dropped before the commit lands."""
        return not self.committed and self.left() < 0


class Stream(Protocol):
    ordered: bool

    @property
    def position(self) -> int: ...
    async def start(self) -> None: ...
    async def reserve(self) -> Ticket: ...
    def handed_out(self, ticket: Ticket, message_id: int) -> None: ...
    async def release(
        self, tickets: list[Ticket], payloads: list[bytes]
    ) -> tuple[int | None, bool]: ...
    async def sweep(self, announce: bytes | None = None) -> int | None: ...
    def advance(self, upto: int) -> None: ...
    async def wait_for(self, message_id: int, timeout: float = LEASE_SECONDS) -> bool: ...
    def upto(self) -> int | None: ...


class _Known:
    """What a process knows of the position: it only moves forward; waiters are told when it
    does."""

    ordered = False

    def __init__(self, latest: Callable[[], Awaitable[int]]) -> None:
        self._latest = latest  # the newest stored message id: where the position starts
        self._ready = False
        self._position = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def position(self) -> int:
        return self._position

    def upto(self) -> int | None:
        """Where reads stop (None: nowhere; also before the first start, when nothing of
        this process can have been sent yet)."""
        return self._position if self._ready else None

    async def start(self) -> None:
        if not self._ready:
            await self._begin(await self._latest())
            self._ready = True

    async def _begin(self, latest_id: int) -> None:
        raise NotImplementedError

    def advance(self, upto: int) -> None:
        if upto <= self._position:
            return
        self._position = upto
        if self._waiters:
            keep = []
            for message_id, future in self._waiters:
                if message_id <= upto:
                    if not future.done():
                        future.set_result(None)
                else:
                    keep.append((message_id, future))
            self._waiters = keep

    async def wait_for(self, message_id: int, timeout: float = LEASE_SECONDS) -> bool:
        """Wait until `message_id` is settled; False if it took longer than `timeout` (a dead
        process's place, say, until its lease ends)."""
        if message_id <= self._position:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (message_id, future)
        self._waiters.append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)


class Ordered(_Known):
    """SQLite: sends commit in id order from one writer; every committed id is settled."""

    ordered = True

    def upto(self) -> int | None:
        return None

    async def start(self) -> None:
        return None  # nothing waits on the position here

    async def reserve(self) -> Ticket:  # not used: nothing to reserve
        return Ticket("", time.monotonic())

    def handed_out(self, ticket: Ticket, message_id: int) -> None:
        ticket.message_id = message_id

    async def release(
        self, tickets: list[Ticket], payloads: list[bytes]
    ) -> tuple[int | None, bool]:
        return None, False  # never reserved

    async def sweep(self, announce: bytes | None = None) -> int | None:
        return None

    async def wait_for(self, message_id: int, timeout: float = LEASE_SECONDS) -> bool:
        return True


class LocalStream(_Known):
    """One process on PostgreSQL: the reserved places in memory."""

    def __init__(self, latest: Callable[[], Awaitable[int]]) -> None:
        super().__init__(latest)
        self._places: dict[str, int] = {}
        self._top = 0  # the highest id released
        self._tokens = itertools.count(1)

    async def _begin(self, latest_id: int) -> None:
        self._top = max(self._top, latest_id)
        self.advance(self._settled())

    def _settled(self) -> int:
        return min(self._places.values()) - 1 if self._places else self._top

    async def reserve(self) -> Ticket:
        await self.start()
        ticket = Ticket(str(next(self._tokens)), time.monotonic())
        self._places[ticket.token] = self._top + 1
        return ticket

    def handed_out(self, ticket: Ticket, message_id: int) -> None:
        """The send's id is known: its place moves up to it, so that it holds back only the
        ids above it (the marker held back every id handed out after it)."""
        ticket.message_id = message_id
        if ticket.token in self._places:
            self._places[ticket.token] = message_id

    async def release(
        self, tickets: list[Ticket], payloads: list[bytes]
    ) -> tuple[int | None, bool]:
        """The new position; the caller publishes the payloads with it, before anything else
        runs here (one process: nothing can come between)."""
        for ticket in tickets:
            self._places.pop(ticket.token, None)
            self._top = max(self._top, ticket.message_id)
        settled = self._settled()
        self.advance(settled)
        return settled, False

    async def sweep(self, announce: bytes | None = None) -> int | None:
        return None  # a place here dies with its process, and with it every reader

    def upto(self) -> int | None:
        """Reads stop at the position only while a send of this process is committing: when
        none is, every id it handed out is settled, and another process (a CLI command) may
        have written above what this one knows of."""
        return self._position if self._places else None


# KEYS: the places (token -> marker), their leases (token -> expiry in ms), the highest id
# released. Redis's own clock times the leases, so processes' clocks need not agree.
_RESERVE = """
local top = tonumber(redis.call('GET', KEYS[3]) or '0')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], top + 1, ARGV[i])
  redis.call('ZADD', KEYS[2], ms + tonumber(ARGV[1]), ARGV[i])
end
return top
"""
# ARGV: the events channel, the number of releases, then each release in turn: its number of
# places, pairs of (token, id or 0), its number of payloads, the payloads. Each release's
# payloads are published with the position just after it (`core.events.positioned`), exactly
# as if each were a call of its own. The places of a process that died are dropped first, once
# their leases end. A release of no places and no payloads: a sweep. Returns each position.
_RELEASE = """
local top = tonumber(redis.call('GET', KEYS[3]) or '0')
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for _, token in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms)) do
  redis.call('ZREM', KEYS[1], token)
  redis.call('ZREM', KEYS[2], token)
end
local positions = {}
local i = 3
for r = 1, tonumber(ARGV[2]) do
  local count = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, count do
    redis.call('ZREM', KEYS[1], ARGV[i])
    redis.call('ZREM', KEYS[2], ARGV[i])
    local id = tonumber(ARGV[i + 1])
    if id > top then top = id end
    i = i + 2
  end
  local low = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local position = top
  if low[2] then position = tonumber(low[2]) - 1 end
  local payloads = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, payloads do
    redis.call('PUBLISH', ARGV[1], '@' .. position .. '\\n' .. ARGV[i])
    i = i + 1
  end
  positions[r] = position
end
redis.call('SET', KEYS[3], top)
return positions
"""
# ARGV[1]: the newest id in the database (on start: never below what is stored)
_SEED = """
local top = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > top then redis.call('SET', KEYS[1], ARGV[1]) end
return 0
"""


class RedisStream(_Known):
    """Several processes: the places in Redis, shared by all of them. The sends of a process
    that reserve (or release) while its last reservation (or release) is out go together in
    the next (`Gathered`)."""

    def __init__(
        self,
        latest: Callable[[], Awaitable[int]],
        redis: Callable[[], Any],
        prefix: str,
        *,
        channel: str = "",
        lease: float = LEASE_SECONDS,
    ) -> None:
        super().__init__(latest)
        self.lease = lease
        self._channel = channel  # the Redis channel events are published on
        self._redis = redis  # the broker's client, once it has started
        self._keys = [f"{prefix}:stream:{name}" for name in ("places", "leases", "top")]
        self._name = uuid.uuid4().hex[:12]
        self._failed_at = -lease
        # only with Redis (not loaded otherwise); a script's own error is a bug, and is raised
        from redis.exceptions import ConnectionError, TimeoutError

        self._lost: tuple[type[Exception], ...] = (ConnectionError, TimeoutError, OSError)
        self._tokens = itertools.count(1)
        self._scripts: dict[str, Any] = {}
        self._reserves = Gathered(self._reserve_all, give_back=self._give_back)
        self._releases = Gathered(self._release_all)
        self._giving_back: set[asyncio.Future[Any]] = set()

    def _script(self, source: str) -> Any:
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self._redis().register_script(source)
        return script

    async def _begin(self, latest_id: int) -> None:
        await self._script(_SEED)(keys=self._keys[2:], args=[latest_id])
        await self.sweep()

    def upto(self) -> int | None:
        return None if self._unreachable() or not self._ready else self._position

    def _unreachable(self) -> bool:
        return time.monotonic() - self._failed_at < self.lease

    def _failed(self, exc: Exception) -> None:
        if not self._unreachable():
            log.warning("the message stream's places are out of reach (%s): sends take turns", exc)
        self._failed_at = time.monotonic()

    async def reserve(self) -> Ticket:
        ticket = Ticket(f"{self._name}:{next(self._tokens)}", time.monotonic(), self.lease)
        ticket.placed = await self._reserves(ticket.token)
        return ticket

    async def _reserve_all(self, tokens: list[str]) -> list[bool]:
        try:
            await self.start()
            lease_ms = int(self.lease * 1000)
            await self._script(_RESERVE)(keys=self._keys, args=[lease_ms, *tokens])
        except self._lost as exc:
            self._failed(exc)
            return [False] * len(tokens)
        return [True] * len(tokens)

    def _give_back(self, token: str, placed: bool) -> None:
        """A place reserved for a send that gave up meanwhile: released now, not held until its
        lease ends (which would hold back every process's deliveries)."""
        if placed:
            task = asyncio.ensure_future(self._releases(([token, 0], [])))
            self._giving_back.add(task)
            task.add_done_callback(self._giving_back.discard)

    def handed_out(self, ticket: Ticket, message_id: int) -> None:
        """The send's id is known. Its place stays at its marker: moving it up would cost a
        round trip, and the place is reserved just before the id is handed out, so the marker
        holds back little more than the send's own id, for the length of its commit."""
        ticket.message_id = message_id

    async def release(
        self, tickets: list[Ticket], payloads: list[bytes]
    ) -> tuple[int | None, bool]:
        """Release the places and publish the payloads with the new position, in one step:
        an envelope that says the position passed an id is never out before that id's own."""
        places: list[Any] = []
        for ticket in tickets:
            if ticket.placed:
                places += [ticket.token, ticket.message_id]
        if not places:
            return None, False
        settled = await self._releases((places, payloads))
        return settled, settled is not None

    async def sweep(self, announce: bytes | None = None) -> int | None:
        """Drop the places whose lease ended and read the position (a periodic check). With
        `announce` (an envelope for nobody), the position is also published in front of it,
        after every envelope it covers, so that every process's hub hears it in order."""
        return await self._releases(([], [announce] if announce else []))

    async def _release_all(
        self, releases: list[tuple[list[Any], list[bytes]]]
    ) -> Sequence[int | None]:
        args: list[Any] = [self._channel, len(releases)]
        for places, payloads in releases:
            args += [len(places) // 2, *places, len(payloads), *payloads]
        try:
            positions = await self._script(_RELEASE)(keys=self._keys, args=args)
        except self._lost as exc:  # the places lapse with their leases
            self._failed(exc)
            return [None] * len(releases)
        settled = [int(position) for position in positions]
        self.advance(max(settled))
        return settled


def make_stream(
    dialect: str,
    latest: Callable[[], Awaitable[int]],
    redis: Callable[[], Any] | None,
    prefix: str,
    channel: str = "",
) -> Stream:
    """Ordered on SQLite; places in Redis when there is one (publishing on `channel`), in
    memory otherwise."""
    if dialect == "sqlite":
        return Ordered(latest)
    if redis is not None:
        return RedisStream(latest, redis, prefix, channel=channel)
    return LocalStream(latest)
