"""Renewing what the process believes of people before it lapses (`core.people`).

Whoever was asked about since their belief was read (a sender, a recipient, a connected
person the hub walks, a sign-in presenting its token) is read afresh here in the last
quarter of that belief, a chunk to a read, and so is never read on a request's path while
in use: someone who sends every six seconds, say, is never asked about in that quarter. A
belief is still no older than `rt.remember` seconds: renewing is reading the database again.
"""

from __future__ import annotations

from pigeon.accounts import blocks, directory
from pigeon.auth import service
from pigeon.core.background import Periodic
from pigeon.core.people import Beliefs, renew_due
from pigeon.core.runtime import Runtime

EVERY = 1.0  # seconds between looks, at most: well inside the quarter of a belief's life


async def renew(rt: Runtime) -> int:
    """One look: every belief due for renewal read afresh; how many were."""
    people = rt.people
    return (
        await renew_due(people.principals, lambda ids: directory.read_principals(rt, ids))
        + await renew_due(people.edges, lambda ids: blocks.read_edges(rt, ids))
        + await renew_due(people.signins, lambda ids: service.read_signins(rt, ids))
    )


class Renewal(Periodic):
    """A look every `interval()` seconds; a look that renewed someone is counted in /metrics,
    and one that failed is logged (a belief that lapsed meanwhile is read on its miss)."""

    name = "renewal"

    def interval(self) -> float:
        return min(EVERY, self.rt.people.seconds * Beliefs.AHEAD / 2)

    async def run_once(self, holder: str) -> bool:
        return await renew(self.rt) > 0
