"""Who is connecting: a ticket, a bearer token, or the page's session cookie from our own pages.

- `?ticket=` (from `POST /api/v1/ws/ticket`): single use, short-lived; a spent, expired or
  forged one is refused with 4401 `invalid_ticket`.
- `?token=` or `Authorization: Bearer`: an access token, as for the JSON API.
- Otherwise the session cookie. A browser attaches it to a socket that any site opens, so it
  counts only when the handshake's `Origin` is this server's own (the scheme, host and port the
  request came to) or one of `PIGEON_ALLOWED_ORIGINS`; otherwise 4403 `bad_origin`. Tickets and
  tokens are not ambient: a page must hold one to send it, so they need no such check.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from starlette.websockets import WebSocket

from pigeon.accounts import directory
from pigeon.auth import service as auth
from pigeon.auth.principals import signin_of
from pigeon.core.deps import SESSION_COOKIE
from pigeon.core.errors import NotAllowed, Unauthorized
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.realtime.tickets import Tickets

log = logging.getLogger("pigeon.realtime")

DEFAULT_PORTS = {"http": 80, "https": 443}


async def authenticate(
    ws: WebSocket, rt: Runtime, tickets: Tickets
) -> tuple[Principal, str | None]:
    """The person behind the handshake, and the sign-in they came through (the connection
    ends with it); raises Unauthorized or NotAllowed with the reason."""
    ticket = ws.query_params.get("ticket")
    if ticket is not None:
        return await _by_ticket(rt, tickets, ticket)
    token = ws.query_params.get("token")
    if not token:
        auth = ws.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
    cookie = None if token else ws.cookies.get(SESSION_COOKIE)
    if cookie and not origin_allowed(ws, allowed_origins(rt.settings.allowed_origins)):
        raise NotAllowed("This page may not open a connection here.", code="bad_origin")
    return await rt.authenticate(token, cookie), signin_of(rt, token, cookie)


async def _by_ticket(rt: Runtime, tickets: Tickets, ticket: str) -> tuple[Principal, str]:
    try:
        found = await tickets.redeem(ticket)
    except Exception:  # the store is unreachable: refuse, the client gets a new ticket
        log.warning("ticket store unavailable", exc_info=True)
        found = None
    if found is None or not await auth.family_active(rt, found[1]):  # or signed out since
        raise Unauthorized("This ticket is expired or was used.", code="invalid_ticket")
    principal = await directory.get_principal(rt, found[0])
    if principal is None:
        raise Unauthorized("Your session is no longer valid.", code="invalid_ticket")
    if principal.is_suspended(rt.clock.now()):
        raise NotAllowed("Your account is suspended.", code="account_suspended")
    return principal, found[1]


def origin_allowed(ws: WebSocket, allowed: frozenset[str]) -> bool:
    """Whether the handshake comes from a page of this server (or of an allowed origin)."""
    origin = normal_origin(ws.headers.get("origin", ""))
    if origin is None:
        return False
    if origin in allowed:
        return True
    host = ws.headers.get("host")
    scheme = "https" if ws.url.scheme in ("wss", "https") else "http"
    return host is not None and origin == normal_origin(f"{scheme}://{host}")


def allowed_origins(setting: str) -> frozenset[str]:
    found = (normal_origin(part.strip()) for part in setting.split(","))
    return frozenset(origin for origin in found if origin is not None)


def normal_origin(value: str) -> str | None:
    """`scheme://host[:port]`, lower case, without a default port; None when it is not one."""
    try:
        parts = urlsplit(value.strip().lower())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"
