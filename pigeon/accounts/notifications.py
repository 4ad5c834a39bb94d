"""What a person is told while away, and how they stop it: the notification settings, the
signed unsubscribe link, and who may be sent a digest at all.

The settings are one small object (`Notifications`) so that another channel (push) is one more
field beside `email_digest`. Muted conversations and message requests never notify, whatever
these say: that rule is the digest's query (`messaging.digest`).

The unsubscribe link names the person and the purpose, signed with the server's key (HMAC-
SHA256), so it needs no table and no sign-in, and works from any mail client for as long as the
key stays the same. It only ever turns something off.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts.models import User
from pigeon.core.errors import NotFound
from pigeon.core.ratelimit import Limiter
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings

PURPOSES = ("digest",)
MAX_TOKEN_CHARS = 100


@dataclasses.dataclass(frozen=True)
class Notifications:
    email_digest: bool


def of(user: User) -> Notifications:
    return Notifications(email_digest=user.email_digest)


async def get_notifications(session: AsyncSession, user_id: int) -> Notifications:
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("No such user.", code="user_not_found")
    return of(user)


async def update_notifications(
    uow: UnitOfWork, limiter: Limiter, user_id: int, *, email_digest: bool | None = None
) -> Notifications:
    """Change one's own settings (only oneself: the routes pass the signed-in person); a field
    left None stays as it is. Rate-limited like every change of one's settings."""
    await limiter.check_settings(user_id)
    return await _set(uow, user_id, email_digest=email_digest)


async def _set(uow: UnitOfWork, user_id: int, *, email_digest: bool | None) -> Notifications:
    user = await uow.app.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("No such user.", code="user_not_found")
    if email_digest is not None:
        user.email_digest = email_digest
    await uow.app.flush()
    return of(user)


# --- the unsubscribe link ---


def _mac(settings: Settings, purpose: str, user_id: int) -> str:
    key = settings.signing_key().encode()
    digest = hmac.new(key, f"unsubscribe:{purpose}:{user_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def unsubscribe_token(settings: Settings, user_id: int, purpose: str = "digest") -> str:
    """`<purpose>.<user id>.<signature>`: readable enough to debug, useless to forge."""
    return f"{purpose}.{user_id}.{_mac(settings, purpose, user_id)}"


def read_unsubscribe_token(settings: Settings, token: str) -> tuple[str, int]:
    """(purpose, user id) of a link we signed; NotFound for anything else, forged or garbled
    (the same answer either way: nothing here tells a guesser how close they came)."""
    invalid = NotFound(
        "This unsubscribe link is not valid. Check that it was copied whole, or change your "
        "notification settings from your profile.",
        code="invalid_unsubscribe_link",
    )
    parts = token.split(".") if len(token) <= MAX_TOKEN_CHARS else []
    if len(parts) != 3:
        raise invalid
    purpose, user_id, signature = parts
    if purpose not in PURPOSES or not (user_id.isascii() and user_id.isdigit()):
        raise invalid
    if len(user_id) > 10 or not hmac.compare_digest(
        signature.encode(), _mac(settings, purpose, int(user_id)).encode()
    ):
        raise invalid
    return purpose, int(user_id)


async def unsubscribe(uow: UnitOfWork, settings: Settings, token: str) -> str:
    """Turn off what the link names, for whoever it names; the purpose. Saying it twice is
    fine (a mail client may POST, then the person clicks), and a deleted account has nothing
    left to turn off."""
    purpose, user_id = read_unsubscribe_token(settings, token)
    user = await uow.app.get(User, user_id)
    if user is None:
        raise NotFound("This unsubscribe link is not valid.", code="invalid_unsubscribe_link")
    if purpose == "digest" and user.deleted_at is None:
        await _set(uow, user_id, email_digest=False)
    return purpose


# --- for the digest job ---


async def digest_recipients(
    session: AsyncSession, user_ids: Iterable[int], *, away_since: dt.datetime, now: dt.datetime
) -> Sequence[User]:
    """Of these people, those a digest may go to: digests on, the account active, not deleted
    nor suspended, and not seen since `away_since` (whether they are connected right now is
    the caller's to ask: presence is not stored here)."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    found = await session.scalars(
        select(User).where(
            User.id.in_(ids),
            User.email_digest.is_(True),
            User.is_active.is_(True),
            User.deleted_at.is_(None),
            or_(User.suspended_until.is_(None), User.suspended_until <= now),
            or_(User.last_seen_at.is_(None), User.last_seen_at <= away_since),
        )
    )
    return found.all()
