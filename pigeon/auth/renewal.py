"""Renewing what the process believes of people before it lapses (`core.people`).

Whoever was asked about in the last quarter of their belief (a sender, a recipient, a
connected person the hub walks, a sign-in presenting its token) is read afresh here, a
chunk to a read, and so is never read on a request's path while in use. A belief is still
no older than `rt.remember` seconds: renewing is reading the database again.
"""

from __future__ import annotations

import asyncio
import logging

from pigeon.accounts import blocks, directory
from pigeon.auth import service
from pigeon.core.background import Background
from pigeon.core.people import Beliefs, renew_due
from pigeon.core.runtime import Runtime

log = logging.getLogger("pigeon.renewal")

EVERY = 1.0  # seconds between looks, at most: well inside the quarter of a belief's life


async def renew(rt: Runtime) -> int:
    """One look: every belief due for renewal read afresh; how many were."""
    people = rt.people
    return (
        await renew_due(people.principals, lambda ids: directory.read_principals(rt, ids))
        + await renew_due(people.edges, lambda ids: blocks.read_edges(rt, ids))
        + await renew_due(people.signins, lambda ids: service.read_signins(rt, ids))
    )


class Renewal(Background):
    name = "renewal"

    def every(self) -> float:
        return min(EVERY, self.rt.people.seconds * Beliefs.AHEAD / 2)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.every())
            try:
                await renew(self.rt)
            except asyncio.CancelledError:
                raise
            except Exception:  # the next look tries again; a lapsed belief is read on a miss
                log.exception("renewing beliefs failed")
