"""Sign-up, sign-in and tokens: short-lived JWT access tokens and rotating refresh tokens.

A refresh token is used once; using a spent one again means it was stolen (or replayed), so the
whole family it belongs to is revoked and everyone holding one of its tokens must sign in again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.auth.models import RefreshToken
from pigeon.core import ratelimit
from pigeon.core.clock import clock
from pigeon.core.db import Database
from pigeon.core.errors import NotAllowed, Unauthorized
from pigeon.core.security import create_access_token, new_opaque_token, token_digest
from pigeon.settings import Settings


@dataclasses.dataclass(frozen=True)
class TokenPair:
    user: User
    access_token: str
    refresh_token: str
    family_id: str


def check_can_sign_in(user: User) -> None:
    now = clock.now()
    if not user.is_active:
        raise NotAllowed("This account is disabled.", code="account_disabled")
    if user.suspended_until is not None and user.suspended_until > now:
        raise NotAllowed(
            f"This account is suspended until {user.suspended_until:%Y-%m-%d %H:%M} UTC.",
            code="account_suspended",
        )


async def issue_tokens(
    session: AsyncSession, settings: Settings, user: User, *, family_id: str | None = None
) -> TokenPair:
    family = family_id or secrets.token_hex(16)
    refresh = new_opaque_token()
    now = clock.now()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family,
            token_hash=token_digest(refresh),
            created_at=now,
            expires_at=now + dt.timedelta(days=settings.refresh_token_days),
        )
    )
    await session.flush()
    access = create_access_token(
        settings.signing_key(),
        user_id=user.id,
        minutes=settings.access_token_minutes,
        extra={"fid": family},
    )
    return TokenPair(user=user, access_token=access, refresh_token=refresh, family_id=family)


async def register(
    db: Database,
    settings: Settings,
    *,
    email: str,
    username: str,
    password: str,
    display_name: str | None,
    address: str | None,
) -> TokenPair:
    """Sign up (into the default community) and sign in; the API and the page both come here."""
    if not settings.open_registration:
        raise NotAllowed(
            "Registration is closed; ask for an invitation.", code="registration_closed"
        )
    await ratelimit.check_register(settings, address=address)
    async with db.write() as session:
        user = await accounts.create_user(
            session, email=email, username=username, password=password, display_name=display_name
        )
        return await issue_tokens(session, settings, user)


async def login(
    db: Database, settings: Settings, *, login: str, password: str, address: str | None
) -> TokenPair:
    """Sign in by username or email, within the limits per account and per address."""
    async with db.read() as session:  # one account, one budget, by email or by username
        known = await accounts.find_by_login(session, login)
    await ratelimit.check_login(settings, login=f"#{known.id}" if known else login, address=address)
    async with db.write() as session:
        user = await accounts.authenticate(session, login, password)
        if user is None:
            raise Unauthorized("Wrong login or password.", code="invalid_credentials")
        check_can_sign_in(user)
        return await issue_tokens(session, settings, user)


class _Reused(Exception):
    def __init__(self, family_id: str) -> None:
        self.family_id = family_id


async def refresh(db: Database, settings: Settings, token: str) -> TokenPair:
    """Rotate a refresh token. A spent token used again revokes its family (and fails).

    The revocation is committed in its own transaction: the failed rotation rolls back.
    """
    try:
        async with db.write() as session:
            return await _rotate(session, settings, token)
    except _Reused as reused:
        async with db.write() as session:
            await revoke_family(session, reused.family_id)
        raise Unauthorized(
            "This refresh token was already used; every session it belonged to is signed out.",
            code="refresh_token_reused",
        ) from None


async def _rotate(session: AsyncSession, settings: Settings, token: str) -> TokenPair:
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
    )
    now = clock.now()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("This session has ended; sign in again.", code="invalid_refresh_token")
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if not spent.rowcount:  # used before, or by a concurrent refresh that won
        raise _Reused(row.family_id)
    user = await accounts.get_user(session, row.user_id)
    check_can_sign_in(user)
    return await issue_tokens(session, settings, user, family_id=row.family_id)


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    _revoked_families.add(family_id)


async def logout(session: AsyncSession, token: str) -> None:
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
    )
    if row is not None:
        await revoke_family(session, row.family_id)


async def family_active(session: AsyncSession, family_id: str) -> bool:
    """Whether a sign-in (a token family) is still live; used by cookie sessions."""
    if family_id in _revoked_families:
        return False
    revoked = await session.scalar(
        select(RefreshToken.id)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None))
        .limit(1)
    )
    if revoked:
        _revoked_families.add(family_id)
    return revoked is None


async def revoke_user(session: AsyncSession, user_id: int) -> None:
    """End every sign-in of a user (suspension)."""
    families = set(
        await session.scalars(
            select(RefreshToken.family_id).where(
                RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
            )
        )
    )
    for family in families:
        await revoke_family(session, family)


_revoked_families: set[str] = set()
