"""The web UI: server-rendered pages over the same services as the JSON API.

`install(app)` adds the page routers, the static files, friendly HTML error pages for everything
outside `/api`, the CSRF guard for cookie-authenticated API writes, and security headers.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.core.errors import install_error_handlers
from pigeon.web import (
    account_email_pages,
    account_pages,
    admin_account_pages,
    admin_pages,
    app_shell,
    auth_pages,
    device_pages,
    error_pages,
    group_pages,
    invitation_pages,
    message_pages,
    moderation_pages,
    notification_pages,
    organise_pages,
    people_pages,
    request_pages,
    search_pages,
    suspension_pages,
)
from pigeon.web.deps import login_url
from pigeon.web.render import STATIC, templates
from pigeon.web.session import ApiCsrfGuard, csrf_token

NOT_PAGES = (
    "/api/",
    "/static/",
    "/metrics",
    "/healthz",
    "/readyz",
    "/docs",
    "/openapi.json",
    "/redoc",
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: https:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)


def is_page(path: str) -> bool:
    return not any(path == p.rstrip("/") or path.startswith(p) for p in NOT_PAGES)


async def html_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
) -> Response | None:
    """HTML for page paths (the JSON envelope stays for the API); 401 sends people to sign in."""
    if not is_page(request.url.path):
        return None
    if status == 401:
        target = login_url(request) if request.method == "GET" else "/login"
        response = RedirectResponse(target, status_code=303)
        if code == "invalid_token":
            response.delete_cookie("pigeon_session", path="/")
        return response
    if status == 422 and request.method == "GET":  # a mangled address, not a form to fix
        status, code, message = 404, "not_found", "This page does not exist."
    retry_after = (headers or {}).get("Retry-After")
    page = await error_pages.context(request, status, code, message, retry_after)
    page["csrf"] = csrf_token(request)
    return templates.TemplateResponse(request, "error.html", page, status_code=status)


class SecurityHeaders:
    """CSP and friends on pages: even if markup slipped through, inline script would not run."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"x-frame-options", b"DENY"),
                ]
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        return await self.app(scope, receive, send_with_headers)


# the pages' routers, in the order they are matched: /messages/new, /messages/search and
# /messages/requests before /messages/{id} (`app.shared_routes` includes them)
ROUTERS = tuple(
    module.router
    for module in (
        app_shell,
        auth_pages,
        people_pages,
        account_pages,
        notification_pages,
        invitation_pages,
        account_email_pages,
        device_pages,
        search_pages,
        request_pages,
        message_pages,
        organise_pages,
        group_pages,
        admin_pages,
        admin_account_pages,
        moderation_pages,
        suspension_pages,
    )
)


def install(app: FastAPI) -> None:
    """What the pages add to an app besides their routes: error pages, headers, the CSRF
    guard, the static files."""
    settings = app.state.settings
    install_error_handlers(app, html_handler=html_error)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ApiCsrfGuard, settings=settings)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
