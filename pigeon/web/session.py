"""The pages' cookie session and CSRF protection.

Signing in through a page creates a refresh-token family (so signing out, suspension and
"sign out everywhere" revoke it like any other sign-in) and puts a long-lived JWT of kind
"session" naming that family in the `pigeon_session` cookie; `principal_from_token` accepts it.

CSRF: every form carries a token derived from the session (an HMAC of the family id), checked on
every unsafe request. Before signing in, the token is derived from a random `pigeon_csrf` cookie
instead (double submit), so the sign-in and registration forms are protected too. The script sends
the same token as `X-CSRF-Token` when it calls the JSON API with the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request
from starlette.requests import cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pigeon.auth import service as auth
from pigeon.core.deps import SESSION_COOKIE
from pigeon.core.errors import NotAllowed, error_response
from pigeon.core.runtime import Runtime
from pigeon.core.security import verify_token
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings

ANON_COOKIE = "pigeon_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def session_token(rt: Runtime, user_id: int, family_id: str) -> str:
    return rt.tokens.issue(
        user_id=user_id,
        minutes=rt.settings.session_days * 1440,
        kind="session",
        extra={"fid": family_id},
    )


def set_session(response: Response, request: Request, settings: Settings, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_days * 86400,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


async def end_session(uow: UnitOfWork, settings: Settings, cookie: str | None) -> None:
    """Revoke the sign-in behind a session cookie (signing out)."""
    family = _family(settings, cookie)
    if family:
        await auth.revoke_family(uow, family)


def _family(settings: Settings, cookie: str | None) -> str | None:
    """The sign-in a session cookie of ours names, expired or not: what signing out ends and
    what the CSRF token is bound to (whether the sign-in is live is authentication's concern)."""
    claims = verify_token(settings.signing_key(), cookie) if cookie else None
    return str(claims["fid"]) if claims and claims["typ"] == "session" else None


def _mac(settings: Settings, purpose: str, value: str) -> str:
    key = settings.signing_key().encode()
    return hmac.new(key, f"csrf:{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def expected_token(settings: Settings, cookies: dict[str, str]) -> str | None:
    """The CSRF token the current cookies call for, or None when there is nothing to bind to."""
    family = _family(settings, cookies.get(SESSION_COOKIE))
    if family:
        return _mac(settings, "session", family)
    anon = cookies.get(ANON_COOKIE)
    return _mac(settings, "anon", anon) if anon else None


def csrf_token(request: Request) -> str:
    """The token to put in forms; before sign-in this sets the double-submit cookie."""
    settings: Settings = request.app.state.settings
    cached = getattr(request.state, "csrf_token", None)
    if cached:
        return cached
    token = expected_token(settings, dict(request.cookies))
    if token is None:
        anon = secrets.token_urlsafe(24)
        request.state.new_anon_cookie = anon
        token = _mac(settings, "anon", anon)
    request.state.csrf_token = token
    return token


def attach_anon_cookie(request: Request, response: Response) -> None:
    anon = getattr(request.state, "new_anon_cookie", None)
    if anon:
        response.set_cookie(
            ANON_COOKIE, anon, httponly=True, samesite="lax", secure=_secure(request), path="/"
        )


def check_csrf(request: Request, supplied: str | None) -> None:
    settings: Settings = request.app.state.settings
    expected = expected_token(settings, dict(request.cookies))
    supplied = supplied or request.headers.get(CSRF_HEADER)
    if not expected or not supplied or not hmac.compare_digest(expected, supplied):
        raise NotAllowed(
            "This form has expired or did not come from this site. Go back, reload and try again.",
            code="csrf_failed",
        )


class ApiCsrfGuard:
    """The JSON API authenticated by the page cookie must carry `X-CSRF-Token` on writes.

    A request is authenticated by its cookie unless it carries a usable bearer token (exactly
    one `Authorization: Bearer <token>` header): a Basic or empty Authorization header, or none,
    leaves the cookie in charge, and so does CSRF. Every Cookie header counts, not just one.
    Bearer-token clients are not affected: they send no cookie a third-party site could ride on.
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in UNSAFE
            and scope["path"].startswith("/api/")
            and not _usable_bearer(scope)
        ):
            cookies = _all_cookies(scope)
            if SESSION_COOKIE in cookies:
                expected = expected_token(self.settings, cookies)
                supplied = _header(scope, CSRF_HEADER) or ""
                if not expected or not hmac.compare_digest(expected, supplied):
                    response = error_response(
                        403, "csrf_failed", "The X-CSRF-Token header is missing or wrong."
                    )
                    return await response(scope, receive, send)
        return await self.app(scope, receive, send)


def _usable_bearer(scope: Scope) -> bool:
    values = [v for k, v in scope["headers"] if k == b"authorization"]
    if len(values) != 1:
        return False
    scheme, _, token = values[0].decode("latin-1").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _all_cookies(scope: Scope) -> dict[str, str]:
    joined = "; ".join(v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie")
    return cookie_parser(joined)


def _header(scope: Scope, name: str) -> str | None:
    raw = name.encode("latin-1")
    return next((v.decode("latin-1") for k, v in scope["headers"] if k == raw), None)
