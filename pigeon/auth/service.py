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
from pigeon.core.clock import clock
from pigeon.core.db import rowcount
from pigeon.core.errors import NotAllowed, Unauthorized
from pigeon.core.events import SignInsRevoked
from pigeon.core.runtime import Runtime
from pigeon.core.security import create_access_token, new_opaque_token, token_digest
from pigeon.core.uow import UnitOfWork
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
    rt: Runtime,
    uow: UnitOfWork,
    *,
    email: str,
    username: str,
    password: str,
    display_name: str | None,
    address: str | None,
) -> TokenPair:
    """Sign up (into the default community) and sign in; the API and the page both come here."""
    settings = rt.settings
    if not settings.open_registration:
        raise NotAllowed(
            "Registration is closed; ask for an invitation.", code="registration_closed"
        )
    await rt.limiter.check_register(address=address)
    user = await accounts.create_user(
        uow.app,
        email=email,
        username=username,
        password=password,
        passwords=rt.passwords,
        display_name=display_name,
        settings=settings,
    )
    return await issue_tokens(uow.app, settings, user)


async def login(
    rt: Runtime, uow: UnitOfWork, *, login: str, password: str, address: str | None
) -> TokenPair:
    """Sign in by username or email, within the limits per account and per address.

    The account is read, and that read ended, before the password is checked: the check takes
    a while and holds no transaction or connection. Only the new sign-in is written.
    """
    async with rt.dbs.app.read() as session:  # one account, one budget, by email or username
        known = await accounts.find_by_login(session, login)
    await rt.limiter.check_login(login=f"#{known.id}" if known else login, address=address)
    user = await accounts.authenticate(rt.passwords, known, password)
    if user is None:
        raise Unauthorized("Wrong login or password.", code="invalid_credentials")
    check_can_sign_in(user)
    return await issue_tokens(uow.app, rt.settings, user)


async def refresh(rt: Runtime, uow: UnitOfWork, token: str) -> TokenPair:
    """Rotate a refresh token. A spent token used again revokes its family (and fails): the
    revocation commits, the failed rotation does not."""
    session = uow.app
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
    if not rowcount(spent):  # used before, or by a concurrent refresh that won
        # the revocation must stand although the request fails: it commits on its own
        family = row.family_id
        await uow.rollback()
        await revoke_family(uow, family)
        await uow.commit()
        raise Unauthorized(
            "This refresh token was already used; every session it belonged to is signed out.",
            code="refresh_token_reused",
        )
    user = await accounts.get_user(session, row.user_id)
    check_can_sign_in(user)
    return await issue_tokens(session, rt.settings, user, family_id=row.family_id)


async def revoke_family(uow: UnitOfWork, family_id: str) -> None:
    await uow.app.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    uow.control(SignInsRevoked(family_ids=[family_id]))


async def logout(uow: UnitOfWork, token: str) -> None:
    row = await uow.app.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
    )
    if row is not None:
        await revoke_family(uow, row.family_id)


async def family_active(rt: Runtime, session: AsyncSession, family_id: str) -> bool:
    """Whether a sign-in (a token family) is still live; used by cookie sessions."""
    if family_id in rt.revoked_signins:
        return False
    revoked = await session.scalar(
        select(RefreshToken.id)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_not(None))
        .limit(1)
    )
    if revoked:
        rt.revoked_signins.add(family_id)
    return revoked is None


async def revoke_user(uow: UnitOfWork, user_id: int) -> None:
    """End every sign-in of a user (suspension)."""
    families = set(
        await uow.app.scalars(
            select(RefreshToken.family_id).where(
                RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
            )
        )
    )
    for family in sorted(families):
        await revoke_family(uow, family)
