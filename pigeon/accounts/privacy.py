"""Whose presence and last seen a viewer may see, for the routes and pages that show people
(the rule itself is `core.people.withheld`, which the conversation list and live frames apply
too)."""

from __future__ import annotations

from collections.abc import Iterable

from pigeon.accounts import blocks, directory
from pigeon.core.people import withheld
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime


async def last_seen_hidden(rt: Runtime, viewer: Principal, user_ids: Iterable[int]) -> set[int]:
    """Of these people, those whose online state and last seen `viewer` may not see."""
    ids = set(user_ids)
    found = await directory.principals(rt, ids)
    edges = await blocks.get_block_edges(rt, viewer.id)
    sharing = {uid: p.shows_last_seen for uid, p in found.items()}
    return withheld(edges, viewer.id, viewer.shows_last_seen, sharing) | (ids - set(found))
