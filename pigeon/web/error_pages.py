"""What an error page says, and where it lets people go next.

A page error keeps its status code, says what happened in words that fit the case (a
conversation one is not in, a person one cannot see, a page for admins, a limit with its wait,
messaging switched off), shows the same navigation as every page, and always offers a way on:
never a dead end. The API keeps its JSON envelope; only pages come here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import Request

from pigeon.core.deps import SESSION_COOKIE
from pigeon.core.principal import Principal
from pigeon.web.deps import nav


@dataclasses.dataclass(frozen=True, slots=True)
class Explanation:
    heading: str
    text: str


# code -> (heading, what to add after the error's own message; "" keeps the message alone)
BY_CODE: dict[str, tuple[str, str]] = {
    "messaging_disabled": (
        "Messaging is switched off",
        "The administrators have switched messaging off for now. Nothing is lost: your "
        "conversations and messages are kept, and they come back as they were when messaging "
        "is on again.",
    ),
    "conversation_not_found": (
        "This conversation does not exist or you are not in it",
        "It may have been deleted, or you may have left it or been removed. Your other "
        "conversations are in Messages.",
    ),
    "message_not_found": (
        "This message does not exist or you cannot see it",
        "It may have been deleted, or it is older than your history keeps.",
    ),
    "user_not_found": (
        "We could not find that person",
        "Nobody here has that name, or they are not in a community you share.",
    ),
    "attachment_not_found": (
        "This file is not available",
        "It may have been removed, or it belongs to a conversation you are not in.",
    ),
    "report_not_found": (
        "This report does not exist or is not yours to see",
        "Reports are shown to the moderators of the communities they come from.",
    ),
    "admin_only": ("This page is for admins", ""),
    "staff_only": ("This page is for managers and admins", ""),
    "account_suspended": ("Your account is suspended", ""),
    "csrf_failed": ("This form has expired", ""),
    "not_found": (
        "This page does not exist",
        "Check the address, or go on from one of the links below.",
    ),
}


def explain(status: int, code: str, message: str, retry_after: str | None) -> Explanation:
    if code in BY_CODE:
        heading, text = BY_CODE[code]
        return Explanation(heading, text or message)
    if status == 429:
        if retry_after and retry_after.isdigit():
            wait = "1 second" if retry_after == "1" else f"{retry_after} seconds"
        else:
            wait = "a moment"
        return Explanation(
            "Slow down a little", f"That was done too often just now. Try again in {wait}."
        )
    if status == 404:
        return Explanation("This page does not exist", message)
    if status == 403:
        return Explanation("You cannot do that", message)
    if status >= 500:
        return Explanation(
            "Something went wrong on our side", "It is not your doing; try again in a moment."
        )
    return Explanation("Something is not right", message)


def ways_on(viewer: Principal | None, messaging_enabled: bool) -> list[tuple[str, str]]:
    """(label, href) of where to go from here, the most useful first; at least one."""
    if viewer is None:
        return [("Sign in", "/login")]
    links = []
    if messaging_enabled:
        links.append(("Back to Messages", "/messages"))
    elif viewer.is_admin:
        links.append(("Turn messaging on in Admin", "/admin"))
    links.append(("Your profile", f"/u/{viewer.username}"))
    return links


async def _viewer(request: Request) -> Principal | None:
    """Who is looking, also on a page whose route never got to ask (an unknown address)."""
    known = getattr(request.state, "viewer", None)
    if known is not None or not request.cookies.get(SESSION_COOKIE):
        return known
    try:
        viewer: Principal = await request.app.state.runtime.authenticate(
            None, request.cookies.get(SESSION_COOKIE)
        )
        return viewer
    except Exception:  # an ended session, or whatever failed: the page goes on without it
        return None


async def context(
    request: Request, status: int, code: str, message: str, retry_after: str | None
) -> dict[str, Any]:
    viewer = await _viewer(request)
    try:
        around = await nav(request, viewer)
    except Exception:  # the error may be that a database is down: a page without the counts
        around = {"viewer": viewer, "messaging_enabled": False, "unread_total": 0}
    about = explain(status, code, message, retry_after)
    return {
        **around,
        "status": status,
        "code": code,
        "message": message,
        "heading": about.heading,
        "text": about.text,
        "ways": ways_on(viewer, around["messaging_enabled"]),
        "title": about.heading,
        "draft": getattr(request.state, "draft", None),
    }
