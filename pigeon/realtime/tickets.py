"""Single-use, short-lived tickets to open the WebSocket without an access token in the URL.

A URL ends up in logs and browser history; an access token there outlives the connection by
its whole lifetime. A ticket (`POST /api/v1/ws/ticket`, then `/api/v1/ws?ticket=...`) is a
signed claim of who may connect, valid `ws_ticket_seconds` and only once, in any process: its
id is marked used in Redis when Redis is configured (`SET NX` with an expiry), else in this
process. Expiry is checked against the app's clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from typing import Any

from pydantic import BaseModel

from pigeon.core.security import Tokens
from pigeon.settings import Settings

log = logging.getLogger("pigeon.realtime")

KIND = "ws_ticket"


class TicketOut(BaseModel):
    ticket: str
    expires_in: int  # seconds


class Tickets:
    MAX_USED = 100_000  # used ids remembered in this process (without Redis), until they expire

    def __init__(self, settings: Settings, tokens: Tokens, *, redis: Any = None) -> None:
        self._tokens = tokens
        self.seconds = settings.ws_ticket_seconds
        self._redis = redis
        self._prefix = f"{settings.redis_prefix}:wsticket:"
        self._used: dict[str, float] = {}  # ticket id -> when it expires

    def issue(self, user_id: int, signin: str) -> TicketOut:
        """A ticket in the name of this sign-in: it stops working when the sign-in ends."""
        now = self._tokens.clock.now()
        expires = now + dt.timedelta(seconds=self.seconds)
        ticket = self._tokens.issue(
            issued_at=now,
            user_id=user_id,
            minutes=1,
            kind=KIND,
            extra={
                "exp": int(expires.timestamp()),
                "jti": secrets.token_urlsafe(16),
                "fid": signin,
            },
        )
        return TicketOut(ticket=ticket, expires_in=self.seconds)

    async def redeem(self, ticket: str) -> tuple[int, str] | None:
        """(user, sign-in) a ticket admits, spending it; None when it is forged, expired or
        spent."""
        claims = self._tokens.read(ticket, kind=KIND)
        if claims is None or not isinstance(claims.get("jti"), str):
            return None
        if not await self._first_use(claims["jti"], float(claims["exp"])):
            return None
        return int(claims["user_id"]), str(claims["family_id"])

    async def _first_use(self, ticket_id: str, expires_at: float) -> bool:
        now = self._tokens.clock.now().timestamp()
        if self._redis is not None:
            # kept a little past the ticket's own expiry, so it is never usable twice
            ttl = max(1, int(expires_at - now) + 60)
            return bool(await self._redis.set(self._prefix + ticket_id, b"1", nx=True, ex=ttl))
        if ticket_id in self._used:
            return False
        if len(self._used) >= self.MAX_USED:
            self._used = {k: v for k, v in self._used.items() if v >= now}
        self._used[ticket_id] = expires_at
        return True
