"""Typing indicators: throttled on the way in, expiring on their own on the way out.

A client sends `{type: "typing", conversation_id}` every few seconds while the person types.
The server forwards at most one per person and conversation every half `typing_seconds`, and
each forwarded event carries `expires_at` (`typing_seconds` later): a receiver shows the
indicator until then unless another one arrives, so no "stopped typing" message is needed.
"""

from __future__ import annotations

import datetime as dt

from pigeon.core.clock import Clock
from pigeon.messaging import request_state
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import Typing, TypingData
from pigeon.messaging.service import access_conversation, check_can_write, require_enabled


class TypingThrottle:
    def __init__(self, seconds: float, clock: Clock) -> None:
        self.seconds = seconds
        self.clock = clock
        self._last: dict[tuple[int, int], float] = {}

    def allow(self, user_id: int, conversation_id: int) -> bool:
        now = self.clock.monotonic()
        key = (user_id, conversation_id)
        last = self._last.get(key)
        if last is not None and now - last < self.seconds / 2:
            return False
        self._last[key] = now
        if len(self._last) > 50_000:  # forget stale entries now and then
            cutoff = now - self.seconds
            self._last = {k: v for k, v in self._last.items() if v >= cutoff}
        return True


async def typing(ctx: Ctx, throttle: TypingThrottle, conversation_id: int) -> bool:
    """Tell the other participants that the viewer is typing; False when throttled."""
    if not throttle.allow(ctx.viewer.id, conversation_id):
        return False
    await require_enabled(ctx)
    if await ctx.rt.switches.messaging_mode() == "read_only":  # nothing can be sent: no typing
        return False
    convo = await access_conversation(ctx, conversation_id)
    if request_state.is_pending(convo.members):  # a request: no typing either way until accepted
        return False
    # the same rules and audience as a message: refused across a block in a direct
    # conversation or outside the communities, not to those who blocked the typist in a group
    blockers = await check_can_write(ctx, convo)
    others = sorted(set(convo.other_ids(ctx.viewer.id)) - blockers)
    expires = ctx.rt.clock.now() + dt.timedelta(seconds=throttle.seconds)
    data = TypingData(
        conversation_id=conversation_id, user_id=ctx.viewer.id, expires_at=expires.isoformat()
    )
    ctx.uow.emit(Typing(data=data), others)
    return True
