"""Templates and the filters they use: escaped bodies with safe links, initials, times, days.

Every member-written string goes through Jinja's autoescape; `linkify` is the one filter that
returns markup, and it builds it from escaped pieces only (http and https links, nothing else).
"""

from __future__ import annotations

import datetime as dt
import re
import zlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
STATIC = Path(__file__).resolve().parent.parent / "static"

_URL = re.compile(r"\bhttps?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""


def linkify(text: str | None) -> Markup:
    """Escape `text`; turn http(s) URLs into links that cannot run script or leak the referrer."""
    if not text:
        return Markup("")
    if "http" not in text.lower():
        return escape(text)
    out: list[str] = []
    pos = 0
    for match in _URL.finditer(text):
        url = match.group(0)
        trimmed = url.rstrip(_TRAILING)
        end = match.start() + len(trimmed)
        out.append(escape(text[pos : match.start()]))
        out.append(
            Markup(
                '<a href="{0}" rel="noopener noreferrer nofollow" target="_blank">{0}</a>'
            ).format(trimmed)
        )
        pos = end
    out.append(escape(text[pos:]))
    return Markup("").join(out)


def initials(name: str | None) -> str:
    words = [w for w in (name or "?").split() if w[:1].isalnum()]
    letters = "".join(w[0] for w in words[:2]) or (name or "?")[:1]
    return letters.upper()


def avatar_hue(seed: int | str | None) -> int:
    """One of the stylesheet's eight avatar colours (no inline styles: the CSP forbids them)."""
    return zlib.crc32(str(seed).encode()) % 8


# The reader's time zone: the `tz` cookie the script sets, else the server's PIGEON_TIMEZONE.
_zone: ContextVar[dt.tzinfo] = ContextVar("reader_zone", default=dt.UTC)
# The time a page is rendered at, by the app's clock ("today", "yesterday").
_now: ContextVar[dt.datetime | None] = ContextVar("render_now", default=None)


def _render_now() -> dt.datetime:
    return _now.get() or dt.datetime.now(dt.UTC)


def reader_zone(request: Request) -> ZoneInfo:
    name = request.cookies.get("tz") or request.app.state.settings.timezone
    try:
        return _zone_named(name)
    except (ZoneInfoNotFoundError, ValueError):
        return _zone_named(request.app.state.settings.timezone)


@lru_cache(maxsize=64)
def _zone_named(name: str) -> ZoneInfo:
    if len(name) > 64:
        raise ValueError(name)
    return ZoneInfo(name)


def local(value: dt.datetime) -> dt.datetime:
    return value.astimezone(_zone.get())


def hm(value: dt.datetime | None) -> str:
    return local(value).strftime("%H:%M") if value else ""


def short_time(value: dt.datetime | None) -> str:
    """HH:MM today, the weekday within a week, the date otherwise, in the reader's zone."""
    if value is None:
        return ""
    value, now = local(value), local(_render_now())
    if value.date() == now.date():
        return value.strftime("%H:%M")
    if (now - value).days < 6:
        return value.strftime("%a")
    return f"{value:%b} {value.day}" + ("" if value.year == now.year else f", {value.year}")


def last_seen(value: dt.datetime | None) -> str:
    """ "last seen today at 14:05", "… yesterday at 09:12", "… Monday at 10:00", "… 3 Nov"."""
    if value is None:
        return ""
    value, now = local(value), local(_render_now())
    days = (now.date() - value.date()).days
    if days <= 0:
        return f"last seen today at {value:%H:%M}"
    if days == 1:
        return f"last seen yesterday at {value:%H:%M}"
    if days < 7:
        return f"last seen {value:%A} at {value:%H:%M}"
    return f"last seen {value.day} {value:%b}" + (
        "" if value.year == now.year else f" {value.year}"
    )


def day_label(day: dt.date) -> str:
    today = local(_render_now()).date()
    if day == today:
        return "Today"
    if day == today - dt.timedelta(days=1):
        return "Yesterday"
    label = f"{day:%A}, {day:%B} {day.day}"
    return label if day.year == today.year else f"{label}, {day.year}"


def by_day(messages: Iterable[dict[str, Any]]) -> Iterator[tuple[dt.date, list[dict[str, Any]]]]:
    """Messages grouped by the reader's calendar day."""
    day: dt.date | None = None
    group: list[dict[str, Any]] = []
    for m in messages:
        d = local(m["created_at"]).date()
        if d != day and group:
            assert day is not None
            yield day, group
            group = []
        day = d
        group.append(m)
    if group and day is not None:
        yield day, group


def iso(value: dt.datetime | None) -> str:
    return value.isoformat() if value else ""


def preview(text: str | None, limit: int = 90) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))
    env = templates.env
    env.autoescape = True
    env.auto_reload = False  # templates ship with the package; no stat() per render
    env.trim_blocks = True
    env.lstrip_blocks = True
    env.filters.update(
        linkify=linkify,
        initials=initials,
        hue=avatar_hue,
        short_time=short_time,
        last_seen=last_seen,
        hm=hm,
        day_label=day_label,
        iso=iso,
        preview=preview,
    )
    env.globals["by_day"] = by_day
    return templates


templates = make_templates()


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Any:
    from pigeon.web.session import attach_anon_cookie, csrf_token

    _zone.set(reader_zone(request))
    _now.set(request.app.state.runtime.clock.now())
    context.setdefault("csrf", csrf_token(request))
    response = templates.TemplateResponse(request, name, context, status_code=status)
    attach_anon_cookie(request, response)
    return response
