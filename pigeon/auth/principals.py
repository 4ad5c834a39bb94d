"""Who is asking: a bearer access token or a page's session cookie, resolved to a principal.

Every path that acts for a person comes here: the JSON API and the pages (through
`core.deps.CurrentUser`, which the app points at `principal_from_token`) and the WebSocket.
Both kinds of token name their sign-in, and both stop working the moment it ends (signing
out, suspension, a reused refresh token), not only when they expire.
"""

from __future__ import annotations

from pigeon.accounts import directory
from pigeon.auth import service as auth
from pigeon.core.errors import NotAllowed, Unauthorized
from pigeon.core.logs import set_user
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime


async def principal_from_token(
    rt: Runtime, token: str | None, *, cookie: str | None = None
) -> Principal:
    """Resolve a bearer access token (or a page's session cookie) to an active principal."""
    claims = rt.tokens.read(token) if token else None
    if claims is None and cookie:
        claims = rt.tokens.read(cookie, kind="session")
    if claims is not None and not await auth.family_active(rt, claims["family_id"]):
        claims = None
    if claims is None:
        if token or cookie:
            raise Unauthorized("Your session has expired or is not valid.", code="invalid_token")
        raise Unauthorized("Sign in to continue.", code="not_authenticated")
    principal = await directory.get_principal(rt, claims["user_id"])
    if principal is None:
        raise Unauthorized("Your session is no longer valid.", code="invalid_token")
    if principal.is_suspended(rt.clock.now()):
        raise NotAllowed("Your account is suspended.", code="account_suspended")
    set_user(principal.id)
    return principal


def signin_of(rt: Runtime, token: str | None, cookie: str | None) -> str | None:
    """The sign-in (token family) a request authenticated with, for what it hands out in that
    sign-in's name (a WebSocket ticket ends with it)."""
    claims = rt.tokens.read(token) if token else None
    if claims is None and cookie:
        claims = rt.tokens.read(cookie, kind="session")
    return str(claims["family_id"]) if claims is not None else None
