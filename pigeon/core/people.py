"""What one app remembers about people between requests: who they are (principals) and who
blocked whom (block edges), each for at most `seconds` (`Runtime.remember`).

The send path reads both on every message, so they are served from memory. Every change to
them is announced on the control channel once it commits, and every process forgets the people
concerned at once; the expiry only backstops an announcement that never arrived (a CLI change
with no Redis to carry it, say).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pigeon.core.clock import Clock
from pigeon.core.principal import Principal

Edges = frozenset[tuple[int, int]]  # (blocker, blocked) pairs


class PeopleCache:
    MAX_ENTRIES = 100_000

    def __init__(self, clock: Clock, seconds: float = 10.0) -> None:
        self.clock = clock
        self.seconds = seconds
        self._principals: dict[int, tuple[float, Principal]] = {}
        self._edges: dict[int, tuple[float, Edges]] = {}

    def principal(self, user_id: int) -> Principal | None:
        hit = self._principals.get(user_id)
        return hit[1] if hit and hit[0] > self.clock.monotonic() else None

    def keep_principals(self, found: Iterable[Principal]) -> None:
        if len(self._principals) > self.MAX_ENTRIES:
            self._principals.clear()
        until = self.clock.monotonic() + self.seconds
        for p in found:
            self._principals[p.id] = (until, p)

    def edges(self, user_id: int) -> Edges | None:
        hit = self._edges.get(user_id)
        return hit[1] if hit and hit[0] > self.clock.monotonic() else None

    def keep_edges(self, user_id: int, edges: Edges) -> None:
        if len(self._edges) > self.MAX_ENTRIES:
            self._edges.clear()
        self._edges[user_id] = (self.clock.monotonic() + self.seconds, edges)

    def forget(self, *user_ids: int) -> None:
        for uid in user_ids:
            self._principals.pop(uid, None)

    def clear(self) -> None:
        self._principals.clear()
        self._edges.clear()

    def forget_edges(self, *user_ids: int) -> None:
        for uid in user_ids:
            self._edges.pop(uid, None)


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
