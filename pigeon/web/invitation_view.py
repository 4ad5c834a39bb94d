"""One's own pending invitations, as the profile shows them (with Accept and Decline)."""

from __future__ import annotations

from typing import Any

from pigeon.accounts import invitation_lists
from pigeon.messaging.context import Ctx


async def pending_for(ctx: Ctx) -> list[dict[str, Any]]:
    now = ctx.rt.clock.now()
    async with ctx.uow.read(ctx.dbs.app) as session:
        rows = await invitation_lists.list_mine(session, ctx.viewer, now)
        names = await invitation_lists.community_names(session, rows)
    return [
        {
            "id": r.id,
            "community": names[r.community_id].name if r.community_id in names else "",
            "tier": r.tier,
            "expires_at": r.expires_at,
        }
        for r in rows
    ]
