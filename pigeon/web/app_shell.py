"""The installable app: its manifest, its service worker and the offline page the worker
shows when the network is gone. None of them says anything about anyone, so any of them may
be cached by the browser; the worker itself is revalidated on every check (`no-cache`)."""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from pigeon.web.render import STATIC, TEMPLATES, render

router = APIRouter()

# what the offline page and the worker are made of: a change to any of them is a new version
SHELL_FILES = ("sw.js", "pigeon.js", "pigeon.css", "icons")
SHELL_TEMPLATES = ("base.html", "offline.html")
THEME = "#0b5cad"  # the stylesheet's accent
BACKGROUND = "#f6f7f9"  # its page background


@cache
def shell_version() -> str:
    """A digest of the shell's files: they ship with the package and do not change while it
    runs, so it is computed once."""
    digest = hashlib.sha256()
    paths = [STATIC / name for name in SHELL_FILES] + [TEMPLATES / n for n in SHELL_TEMPLATES]
    for path in paths:
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if file.is_file():
                digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


@router.get("/manifest.webmanifest")
async def manifest(request: Request) -> Response:
    community = request.app.state.settings.default_community_name
    body: dict[str, Any] = {
        "name": f"{community} · Pigeon",
        "short_name": "Pigeon",
        "description": f"Messages with {community}",
        "id": "/",
        "start_url": "/messages",
        "scope": "/",
        "display": "standalone",
        "theme_color": THEME,
        "background_color": BACKGROUND,
        "icons": [
            {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png"},
            {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png"},
            {
                "src": "/static/icons/maskable-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    return JSONResponse(
        body,
        media_type="application/manifest+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/sw.js")
async def service_worker() -> Response:
    script = (STATIC / "sw.js").read_text().replace("__VERSION__", shell_version())
    return Response(
        script,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


@router.get("/offline")
async def offline(request: Request) -> Response:
    """The page a service worker shows for a page it could not load: the same for everyone,
    with no one's data (and no CSRF token) in it, since the worker keeps it."""
    context = {"title": "Offline", "viewer": None, "csrf": "", "offline": True}
    response: Response = render(request, "offline.html", context)
    response.headers["Cache-Control"] = "no-cache"
    return response
