"""Whom the viewer may message, and if not, why — asked before showing a button that would fail.

Nothing here decides anything new: it gathers the same facts `service.start_direct` gathers (the
switch, the viewer's tier and role, shared communities, blocks, an existing direct conversation)
and runs the same checks from `policy`, in the same order, turning the refusal into a reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable

from pigeon.accounts import blocks, directory
from pigeon.core.errors import NotAllowed
from pigeon.core.principal import Principal
from pigeon.messaging import policy
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx


@dataclasses.dataclass(frozen=True, slots=True)
class Eligibility:
    user_id: int
    allowed: bool
    code: str | None = None
    reason: str | None = None
    conversation_id: int | None = None  # the existing direct conversation, if any


async def viewer_can_start(ctx: Ctx) -> Eligibility:
    """Whether the viewer may start conversations at all (the switch, suspension, tier)."""
    try:
        mode = await ctx.rt.switches.messaging_mode()
        policy.check_enabled(mode != "off")
        policy.check_writable(mode)
        policy.check_active(ctx.viewer, ctx.rt.clock.now())
        policy.check_can_start(ctx.viewer)
    except NotAllowed as refusal:
        return Eligibility(ctx.viewer.id, False, refusal.code, refusal.message)
    return Eligibility(ctx.viewer.id, True)


async def for_people(ctx: Ctx, user_ids: Iterable[int]) -> dict[int, Eligibility]:
    """For each person: may the viewer open or start a direct conversation with them?"""
    ids = set(user_ids) - {ctx.viewer.id}
    if not ids:
        return {}
    mode = await ctx.rt.switches.messaging_mode()
    enabled = mode != "off"
    people = await directory.principals(ctx.rt, ids)
    async with ctx.dbs.app.read() as session:
        pairs = await blocks.blocks_among(session, ctx.viewer.id, ids)
    directs = await messaging.find_directs(ctx, ids) if enabled else {}
    result: dict[int, Eligibility] = {}
    now = ctx.rt.clock.now()
    for uid in ids:
        existing = directs.get(uid)
        try:
            _check_one(ctx.viewer, people.get(uid), mode, existing, pairs, now)
        except NotAllowed as refusal:
            result[uid] = Eligibility(uid, False, refusal.code, refusal.message, existing)
        else:
            result[uid] = Eligibility(uid, True, None, None, existing)
    return result


def _check_one(
    viewer: Principal,
    other: Principal | None,
    mode: str,
    existing: int | None,
    pairs: set[tuple[int, int]],
    now: dt.datetime,
) -> None:
    """The checks of `service.start_direct`, in its order (read-only: an existing conversation
    may be opened and read; nothing new started)."""
    policy.check_enabled(mode != "off")
    if existing is None:
        policy.check_writable(mode)
    policy.check_active(viewer, now)
    if other is None or not other.is_active:
        raise NotAllowed("This account is not available.", code="user_not_found")
    if existing is None:
        policy.check_can_start(viewer)
        if not policy.visible_to(viewer, other):
            raise NotAllowed("This account is not available.", code="user_not_found")
    else:
        policy.check_same_community(viewer, [other])
    policy.check_not_blocked(viewer.id, [other.id], pairs)


async def for_person(ctx: Ctx, user_id: int) -> Eligibility | None:
    """One person; None for oneself."""
    return (await for_people(ctx, [user_id])).get(user_id)
