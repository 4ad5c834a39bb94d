"""What one app believes about people between requests: who they are (principals), who
blocked whom (block edges) and which sign-ins are live, each for at most `seconds` after it
was read (`Runtime.remember`).

The send path reads all three on every message, so they are served from memory. Every change
to them is announced on the control channel once it commits, and every process forgets what
it concerns at once; the expiry only backstops an announcement that never arrived (a CLI
change with no Redis to carry it, say).

A belief asked for at any time since it was read is due for renewal once it is in the last
quarter of its life, and the server's renewal job (`auth.renewal`) reads the due ones afresh,
in one read each, before they lapse: whoever is in use (asked about at least once in each
`seconds`) is never read on a request's path, and nobody is believed longer than `seconds`
after a read. People nobody asked about since their last read lapse and are read on their
next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Generic, TypeVar

from sqlalchemy.engine import Connection

from pigeon.core.clock import Clock
from pigeon.core.db import Database
from pigeon.core.gather import Gathered
from pigeon.core.principal import Principal

Edges = frozenset[tuple[int, int]]  # (blocker, blocked) pairs
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
Fetch = Callable[[Connection, set[K]], Mapping[K, V]]


class Beliefs(Generic[K, V]):
    """Values by key, each believed for `seconds` after it was kept. A key asked for since it
    was kept is due (`take_due`) in the last `AHEAD` of that; a read that a `forget` overtook
    is not kept (`mark`), so an announcement is never undone by a read begun before it."""

    MAX_ENTRIES = 100_000
    AHEAD = 0.25

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self._kept: dict[K, tuple[float, V]] = {}
        # the keys asked for since they were kept. Read by the send thread too: adding to a
        # set and swapping it are safe under the GIL, and a mark lost to a swap is made again
        # at the next ask
        self._asked: set[K] = set()
        self._forgets = 0
        self._reads: dict[tuple[Database, Fetch[K, V]], Gathered[frozenset[K], Mapping[K, V]]] = {}

    def get(self, key: K) -> V | None:
        hit = self._kept.get(key)
        if hit is None:
            return None
        if hit[0] <= self.clock.monotonic():
            return None
        self._asked.add(key)
        return hit[1]

    def mark(self) -> int:
        """Taken before a read, handed to `keep` after it."""
        return self._forgets

    def keep(self, items: Iterable[tuple[K, V]], mark: int) -> None:
        """Believe what was read since `mark` was taken, unless something was forgotten
        meanwhile: the read may have missed the change that was announced."""
        if mark != self._forgets:
            return
        if len(self._kept) > self.MAX_ENTRIES:
            self._kept.clear()
        until = self.clock.monotonic() + self.seconds
        for key, value in items:
            self._kept[key] = (until, value)

    async def read(self, db: Database, fetch: Fetch[K, V], keys: set[K]) -> Mapping[K, V]:
        """`fetch` these keys from `db` now, and believe what it found: a miss, or the renewal
        of those in use (`auth.renewal`). Keys asked for while a read of the same kind is out
        are read together in the next (`core.gather`): a process that has just started meets
        many people at once, and alone each would cost a round trip and a statement."""
        gathered = self._reads.get((db, fetch))
        if gathered is None:
            gathered = Gathered(lambda asked: self._read_all(db, fetch, asked))
            self._reads[(db, fetch)] = gathered
        return await gathered(frozenset(keys))

    async def _read_all(
        self, db: Database, fetch: Fetch[K, V], asked: list[frozenset[K]]
    ) -> list[Mapping[K, V]]:
        keys = set().union(*asked)
        mark = self.mark()
        found = await db.run_read(lambda conn: fetch(conn, keys))
        self.keep(found.items(), mark)
        if len(asked) == 1:
            return [found]
        return [{key: found[key] for key in wanted if key in found} for wanted in asked]

    def forget(self, keys: Iterable[K]) -> None:
        self._forgets += 1
        for key in keys:
            self._kept.pop(key, None)

    def clear(self) -> None:
        self._forgets += 1
        self._kept.clear()

    def take_due(self) -> set[K]:
        """The keys due for renewal, once each: asked for since they were kept, and in the
        last `AHEAD` of their belief. The others asked for wait for theirs; a key that lapsed
        or was forgotten is read at its next ask instead."""
        asked, self._asked = self._asked, set()
        now = self.clock.monotonic()
        soon = now + self.seconds * self.AHEAD
        due: set[K] = set()
        later: list[K] = []
        for key in asked:
            hit = self._kept.get(key)
            if hit is None or hit[0] <= now:
                continue
            if hit[0] <= soon:
                due.add(key)
            else:
                later.append(key)
        self._asked.update(later)
        return due


RENEW_CHUNK = 64  # keys read afresh in one read: 1-2 ms of the event loop on SQLite


async def renew_due(beliefs: Beliefs[K, V], read: Callable[[set[K]], Awaitable[object]]) -> int:
    """Reads afresh (`read`, which keeps what it read) the keys due for renewal, a chunk at
    a time; how many there were."""
    due = list(beliefs.take_due())
    for start in range(0, len(due), RENEW_CHUNK):
        if start:
            await asyncio.sleep(0)  # SQLite reads in place: let what waits go between chunks
        await read(set(due[start : start + RENEW_CHUNK]))
    return len(due)


class PeopleCache:
    def __init__(self, clock: Clock, seconds: float = 10.0) -> None:
        self.principals: Beliefs[int, Principal] = Beliefs(clock, seconds)
        self.edges: Beliefs[int, Edges] = Beliefs(clock, seconds)
        self.signins: Beliefs[str, bool] = Beliefs(clock, seconds)  # family id -> live

    @property
    def seconds(self) -> float:
        return self.principals.seconds

    @seconds.setter
    def seconds(self, seconds: float) -> None:
        for beliefs in (self.principals, self.edges, self.signins):
            beliefs.seconds = seconds

    def clear(self) -> None:
        for beliefs in (self.principals, self.edges, self.signins):
            beliefs.clear()


def estranged(edges: Edges, user_id: int) -> set[int]:
    """Everyone a block stands between `user_id` and, whoever blocked whom: they see neither
    each other's presence, last-seen time nor read receipts."""
    return {b if a == user_id else a for a, b in edges if user_id in (a, b)}


def withheld(
    edges: Edges, viewer_id: int, viewer_shares: bool, sharing: Mapping[int, bool]
) -> set[int]:
    """Of the people in `sharing` ({id: whether they share it}), those whose presence and last
    seen (or, asked about read receipts, how far they have read) `viewer_id` may not see:
    anyone a block stands between, anyone who keeps it to themselves, and, when the viewer
    keeps their own to themselves, everyone (it works both ways, as people know it from
    WhatsApp). The one rule for these, whichever route, page or frame shows them."""
    others = set(sharing) - {viewer_id}
    if not viewer_shares:
        return others
    return estranged(edges, viewer_id) & others | {u for u in others if not sharing[u]}
