"""How many frames a client may send on one connection: a token bucket that may run into debt.

Every client frame takes tokens (a `resume`, which reads the database at length, takes
`RESUME_COST`); the bucket holds `burst` and refills at `rate` a second. A frame that finds the
bucket empty is refused, and still takes its tokens, so the debt grows while the client keeps
going: the first refusal of a run is answered with an error frame (`rate_limited`), the rest
silently, and once the debt passes another `burst` the connection is closed (4008, "too many
frames"). A client that pauses pays the debt back and carries on. Time is the app's clock,
so tests move it instead of sleeping.
"""

from __future__ import annotations

import enum

RESUME_COST = 10.0


class Verdict(enum.Enum):
    ALLOW = "allow"
    WARN = "warn"  # refused, the first of a run: tell the client
    REFUSE = "refuse"  # refused again: say nothing more
    CLOSE = "close"  # the client kept going: close the connection


class FrameBudget:
    __slots__ = ("_at", "_level", "_limited", "burst", "rate")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = float(burst)
        self.rate = rate
        self._level = self.burst
        self._at = now
        self._limited = False

    def take(self, now: float, cost: float = 1.0) -> Verdict:
        self._level = min(self.burst, self._level + max(0.0, now - self._at) * self.rate)
        self._at = now
        self._level -= cost
        if self._level >= 0:
            self._limited = False
            return Verdict.ALLOW
        if self._level < -self.burst:
            return Verdict.CLOSE
        if self._limited:
            return Verdict.REFUSE
        self._limited = True
        return Verdict.WARN
