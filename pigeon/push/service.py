"""Devices and the push switch: every path (API, pages, the sender) goes through these.

Rules (rule: check, code):

- an endpoint is an https URL of a push service, never an address of this machine or its
  network: `check_endpoint`, 422 `invalid_endpoint`;
- a device belongs to whoever subscribed it last: `subscribe` moves the row;
- one removes only one's own devices: the user id in every delete, 404 `device_not_found`;
- a person with push off gets none, on any device: `targets`;
- at most `MAX_DEVICES` devices a person; subscribing one more drops the oldest: `subscribe`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Collection, Sequence
from urllib.parse import urlsplit

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.core.db import Database
from pigeon.core.errors import Invalid, NotFound
from pigeon.core.ratelimit import Limiter
from pigeon.core.uow import UnitOfWork
from pigeon.push.models import PushCursor, PushPreference, PushSubscription
from pigeon.settings import Settings

MAX_DEVICES = 20


def check_endpoint(settings: Settings, endpoint: str) -> str:
    """An endpoint we may POST to: https (http only when tests allow it), a host name rather
    than a private or loopback address (the server must not be turned against its own
    network), no credentials or fragment."""
    endpoint = endpoint.strip()
    bad = Invalid(
        "That is not a push service address.",
        code="invalid_endpoint",
        fields={"endpoint": "must be an https URL of a push service"},
    )
    try:
        url = urlsplit(endpoint)
        port = url.port
    except ValueError:
        raise bad from None
    insecure = settings.push_allow_insecure_endpoints
    if url.scheme != "https" and not (insecure and url.scheme == "http"):
        raise bad
    host = url.hostname or ""
    if not host or url.username or url.password or url.fragment or port == 0:
        raise bad
    if not insecure:
        if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
            raise bad
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if ip is not None and not ip.is_global:
            raise bad
    if any(ord(c) < 33 or ord(c) > 126 for c in endpoint):
        raise bad
    return endpoint


async def subscribe(
    uow: UnitOfWork,
    settings: Settings,
    limiter: Limiter,
    user_id: int,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    label: str,
) -> tuple[PushSubscription, bool]:
    """Keep this device's subscription for the person; (row, created). Subscribing again
    refreshes the keys (a browser may rotate them) and moves the device to this person."""
    await limiter.check_settings(user_id)
    endpoint = check_endpoint(settings, endpoint)
    session = uow.app
    row = await session.scalar(
        select(PushSubscription).where(PushSubscription.endpoint == endpoint)
    )
    created = row is None
    if row is None:
        row = PushSubscription(endpoint=endpoint, created_at=uow.clock.now())
        session.add(row)
    elif row.user_id != user_id:
        row.created_at, row.last_success_at = uow.clock.now(), None
    row.user_id, row.p256dh, row.auth, row.user_agent = user_id, p256dh, auth, label[:100]
    await session.flush()
    await _keep_newest(session, user_id)
    return row, created


async def _keep_newest(session: AsyncSession, user_id: int) -> None:
    ids = list(
        await session.scalars(
            select(PushSubscription.id)
            .where(PushSubscription.user_id == user_id)
            .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
            .offset(MAX_DEVICES)
        )
    )
    if ids:
        await session.execute(delete(PushSubscription).where(PushSubscription.id.in_(ids)))


async def unsubscribe(uow: UnitOfWork, limiter: Limiter, user_id: int, endpoint: str) -> None:
    """Forget this device for the person (the browser's own unsubscribe)."""
    await limiter.check_settings(user_id)
    gone = await uow.app.execute(
        delete(PushSubscription)
        .where(PushSubscription.user_id == user_id, PushSubscription.endpoint == endpoint.strip())
        .returning(PushSubscription.id)
    )
    if gone.first() is None:
        raise NotFound("No such device.", code="device_not_found")


async def remove_device(uow: UnitOfWork, limiter: Limiter, user_id: int, device_id: int) -> None:
    """The list's Remove: by id, one's own only."""
    await limiter.check_settings(user_id)
    gone = await uow.app.execute(
        delete(PushSubscription)
        .where(PushSubscription.user_id == user_id, PushSubscription.id == device_id)
        .returning(PushSubscription.id)
    )
    if gone.first() is None:
        raise NotFound("No such device.", code="device_not_found")


async def devices(session: AsyncSession, user_id: int) -> Sequence[PushSubscription]:
    return (
        await session.scalars(
            select(PushSubscription)
            .where(PushSubscription.user_id == user_id)
            .order_by(PushSubscription.created_at.desc(), PushSubscription.id.desc())
        )
    ).all()


async def push_enabled(session: AsyncSession, user_id: int) -> bool:
    found = await session.scalar(
        select(PushPreference.enabled).where(PushPreference.user_id == user_id)
    )
    return True if found is None else bool(found)


async def set_push_enabled(uow: UnitOfWork, limiter: Limiter, user_id: int, enabled: bool) -> bool:
    await limiter.check_settings(user_id)
    row = await uow.app.get(PushPreference, user_id)
    if row is None:
        uow.app.add(PushPreference(user_id=user_id, enabled=enabled, updated_at=uow.clock.now()))
    else:
        row.enabled, row.updated_at = enabled, uow.clock.now()
    await uow.app.flush()
    return enabled


async def forget_user(uow: UnitOfWork, user_id: int) -> None:
    """An account deleted: its devices hear nothing more (the row itself stays anonymised,
    so no cascade does this)."""
    await uow.app.execute(delete(PushSubscription).where(PushSubscription.user_id == user_id))
    await uow.app.execute(delete(PushPreference).where(PushPreference.user_id == user_id))


# built once, as `push_fanout`'s look-ups are: the fan-out asks on every pass
_TARGETS = (
    select(PushSubscription)
    .where(PushSubscription.user_id.in_(bindparam("users", expanding=True)))
    .where(
        PushSubscription.user_id.not_in(
            select(PushPreference.user_id).where(PushPreference.enabled.is_(False))
        )
    )
    .order_by(PushSubscription.id)
)


async def targets(session: AsyncSession, user_ids: Collection[int]) -> list[PushSubscription]:
    """The devices of these people, leaving out those who turned push off."""
    if not user_ids:
        return []
    return list(await session.scalars(_TARGETS, {"users": sorted(user_ids)}))


def device_label(user_agent: str | None) -> str:
    """ "Firefox on Android": enough for a person to tell their devices apart."""
    ua = user_agent or ""
    browser = next((name for token, name in _BROWSERS if token in ua), "A browser")
    system = next((name for token, name in _SYSTEMS if token in ua), "")
    return f"{browser} on {system}" if system else browser


_BROWSERS = (
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("Chrome/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)


async def record(
    db: Database, *, delivered: Collection[int], gone: Collection[int], now: dt.datetime
) -> None:
    """After a round of pushes: when each device last took one, and the devices whose push
    service said they no longer exist (404, 410), forgotten."""
    if not delivered and not gone:
        return
    async with db.write() as session:
        if delivered:
            await session.execute(
                update(PushSubscription)
                .where(PushSubscription.id.in_(sorted(delivered)))
                .values(last_success_at=now)
            )
        if gone:
            await session.execute(
                delete(PushSubscription).where(PushSubscription.id.in_(sorted(gone)))
            )


# --- the sender's place in the messages ---


async def read_cursor(db: Database, name: str) -> int | None:
    async with db.read() as session:
        row = await session.get(PushCursor, name)
        return row.message_id if row is not None else None


async def start_cursor(db: Database, name: str, message_id: int) -> None:
    """Set the cursor unless it is set (another process may be doing the same)."""
    try:
        async with db.write() as session:
            if await session.get(PushCursor, name) is None:
                session.add(PushCursor(name=name, message_id=message_id))
    except IntegrityError:
        pass


async def move_cursor(db: Database, name: str, message_id: int) -> None:
    async with db.write() as session:
        await session.execute(
            update(PushCursor)
            .where(PushCursor.name == name, PushCursor.message_id < message_id)
            .values(message_id=message_id)
        )
