"""Sign-up, sign-in and tokens: short-lived JWT access tokens and rotating refresh tokens.

A sign-in is a token family: its refresh tokens, and every access token and session cookie
issued with them, carry its id (`fid`). Ending the sign-in (signing out, suspension, reuse of a
spent refresh token) ends all of them at once.

A refresh token is used once. Using a spent one again means it was stolen (or replayed), so
the whole family is revoked and everyone holding one of its tokens must sign in again, with one
exception: the token rotated last, presented again within `refresh_reuse_grace_seconds` (two
tabs refreshing at the same moment), gets the same new pair instead. Successor tokens are
derived from the tokens they replace (`security.successor_token`), so that answer can be given
again without keeping any token in the clear.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import invitations
from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.auth.models import RefreshToken
from pigeon.auth.notices import send_password_notice, send_verification
from pigeon.core.audit import audit
from pigeon.core.db import rowcount
from pigeon.core.errors import NotAllowed, Unauthorized
from pigeon.core.events import SignInsRevoked
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.security import (
    new_family_id,
    new_opaque_token,
    successor_token,
    token_digest,
)
from pigeon.core.uow import UnitOfWork


@dataclasses.dataclass(frozen=True)
class TokenPair:
    user: User
    access_token: str
    refresh_token: str
    family_id: str


def check_can_sign_in(user: User, now: dt.datetime) -> None:
    if not user.is_active:
        raise NotAllowed("This account is disabled.", code="account_disabled")
    if user.suspended_until is not None and user.suspended_until > now:
        raise NotAllowed(
            f"This account is suspended until {user.suspended_until:%Y-%m-%d %H:%M} UTC.",
            code="account_suspended",
        )


async def issue_tokens(
    rt: Runtime,
    uow: UnitOfWork,
    user: User,
    *,
    family_id: str | None = None,
    refresh: str | None = None,
) -> TokenPair:
    """A refresh token (`refresh`, or a new random one) in a sign-in (`family_id`, or a new
    one), and an access token beside it."""
    family = family_id or new_family_id()
    refresh = refresh or new_opaque_token()
    settings, session, now = rt.settings, uow.app, uow.clock.now()
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
    return _pair(rt, user, family, refresh, issued_at=now)


def _pair(
    rt: Runtime, user: User, family: str, refresh: str, *, issued_at: dt.datetime
) -> TokenPair:
    access = rt.tokens.issue(
        user_id=user.id,
        minutes=rt.settings.access_token_minutes,
        extra={"fid": family},
        issued_at=issued_at,
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
    invitation_token: str | None = None,
) -> TokenPair:
    """Sign up and sign in; the API and the page both come here.

    With `registration=invite` only an invitation's token lets someone in. With a token (in
    either mode) the email must be the invited one, and the account joins the invitation's
    community and tier instead of the default community; the invitation is used up in the same
    transaction (`invitations.redeem`), so of two registrations with one token only one wins.
    Following the invitation's link proved the address; anyone else is sent a verification
    email in the same transaction.
    """
    settings = rt.settings
    if invitation_token is None and settings.registration != "open":
        raise NotAllowed(
            "Registration is by invitation only on this server; ask for an invitation.",
            code="registration_closed",
        )
    await rt.limiter.check_register(address=address)
    found = None
    if invitation_token is not None:  # read and ended before the hash, like `login`
        async with rt.dbs.app.read() as session:
            found = await invitations.verify(session, invitation_token, uow.clock.now())
        invitations.check_same_email(found.invitation, email)
    user = await accounts.create_user(
        uow,
        email=email,
        username=username,
        password=password,
        passwords=rt.passwords,
        display_name=display_name,
        join_default=found is None,
        email_verified=found is not None,
        settings=settings,
    )
    if found is not None:
        await invitations.redeem(uow, found.invitation.id, user)
    else:
        await send_verification(uow, settings, user)
    return await issue_tokens(rt, uow, user)


async def login(
    rt: Runtime, uow: UnitOfWork, *, login: str, password: str, address: str | None
) -> TokenPair:
    """Sign in by username or email, within the limits (per address, per account from that
    address, per account).

    The account is read, and that read ended, before the password is checked: the check takes
    a while and holds no transaction or connection. Only the new sign-in is written.
    """
    async with rt.dbs.app.read() as session:  # one account, one budget, by email or username
        known = await accounts.find_by_login(session, login)
    await rt.limiter.check_login(account=f"#{known.id}" if known else login, address=address)
    user = await accounts.authenticate(rt.passwords, known, password)
    if user is None:
        raise Unauthorized("Wrong login or password.", code="invalid_credentials")
    check_can_sign_in(user, uow.clock.now())
    return await issue_tokens(rt, uow, user)


async def refresh(rt: Runtime, uow: UnitOfWork, token: str) -> TokenPair:
    """Rotate a refresh token. A spent token used again revokes its family (and fails): the
    revocation commits, the failed rotation does not. The token rotated last, again within the
    grace window, gets the pair its rotation gave."""
    session = uow.app
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
    )
    now = uow.clock.now()
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("This session has ended; sign in again.", code="invalid_refresh_token")
    successor = successor_token(rt.settings.signing_key(), token)
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None))
        .values(used_at=now)
    )
    if not rowcount(spent):  # used before, or by a concurrent refresh that won
        again = await _same_rotation(rt, session, row.id, successor, now)
        if again is not None:
            return again
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
    check_can_sign_in(user, now)
    return await issue_tokens(rt, uow, user, family_id=row.family_id, refresh=successor)


async def _same_rotation(
    rt: Runtime, session: AsyncSession, row_id: int, successor: str, now: dt.datetime
) -> TokenPair | None:
    """The pair a spent token's rotation gave, when that was within the grace window and its
    successor is still the family's newest token (unused, unrevoked); None otherwise (reuse)."""
    # read afresh: a concurrent rotation may have committed since the row was loaded
    used_at = await session.scalar(select(RefreshToken.used_at).where(RefreshToken.id == row_id))
    grace = dt.timedelta(seconds=rt.settings.refresh_reuse_grace_seconds)
    if used_at is None or now - used_at > grace:
        return None
    nxt = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(successor))
    )
    if nxt is None or nxt.used_at is not None or nxt.revoked_at is not None:
        return None
    if nxt.expires_at <= now:
        return None
    user = await accounts.get_user(session, nxt.user_id)
    check_can_sign_in(user, now)
    return _pair(rt, user, nxt.family_id, successor, issued_at=nxt.created_at)


async def revoke_family(uow: UnitOfWork, family_id: str) -> None:
    await uow.app.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=uow.clock.now())
    )
    uow.control(SignInsRevoked(family_ids=[family_id]))


async def logout(uow: UnitOfWork, token: str) -> None:
    row = await uow.app.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == token_digest(token))
    )
    if row is not None:
        await revoke_family(uow, row.family_id)


async def family_active(rt: Runtime, family_id: str) -> bool:
    """Whether a sign-in is still live; every authenticated request asks (bearer and cookie).

    Answered from memory in the common case: a revocation announced on the control channel is
    in `rt.revoked_signins` at once, and a sign-in read as live is believed for `rt.remember`
    seconds (`rt.people.signins`, renewed while in use): the longest a revocation this
    process was never told about can go unnoticed. After that, or for one not seen before,
    one indexed read of its tokens.
    """
    if family_id in rt.revoked_signins:
        return False
    if rt.people.signins.get(family_id):
        return True
    return family_id in await read_signins(rt, {family_id})


async def read_signins(rt: Runtime, family_ids: set[str]) -> set[str]:
    """Of these sign-ins, those live, read now and believed from now on
    (`core.people.Beliefs.read`); the revoked ones are ended."""
    live = set(await rt.people.signins.read(rt.dbs.app, _live, family_ids))
    if revoked := family_ids - live:
        rt.signins_ended(revoked)
    return live


# built once, as `directory`'s lookups are: the renewal reads sign-ins all day long
_REVOKED = (
    select(RefreshToken.family_id)
    .where(
        RefreshToken.family_id.in_(bindparam("families", expanding=True)),
        RefreshToken.revoked_at.is_not(None),
    )
    .distinct()
)


def _live(conn: Connection, family_ids: set[str]) -> dict[str, bool]:
    revoked = set(conn.scalars(_REVOKED, {"families": list(family_ids)}))
    return dict.fromkeys(family_ids - revoked, True)


async def revoke_user(uow: UnitOfWork, user_id: int, *, keep: str | None = None) -> None:
    """End every sign-in of a user (suspension, deletion), or every one but `keep` (a
    password change, from the sign-in that made it)."""
    families = set(
        await uow.app.scalars(
            select(RefreshToken.family_id).where(
                RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)
            )
        )
    )
    for family in sorted(families - {keep} if keep else families):
        await revoke_family(uow, family)


async def check_password(rt: Runtime, user_id: int, password: str, *, address: str | None) -> User:
    """The signed-in person re-entering their password before something that matters (a
    password change, deleting the account). Each try counts against the sign-in limits of
    the account, like signing in, so this is no way around them; a wrong one is 403
    `wrong_password` (they are signed in: the request itself is not unauthorised). Read and
    ended before the check, like `login`."""
    async with rt.dbs.app.read() as session:
        user = await accounts.get_user(session, user_id)
    await rt.limiter.check_login(account=f"#{user.id}", address=address)
    if await accounts.authenticate(rt.passwords, user, password) is None:
        raise NotAllowed("That is not your current password.", code="wrong_password")
    return user


async def change_password(
    rt: Runtime,
    uow: UnitOfWork,
    actor: Principal,
    *,
    current_password: str,
    new_password: str,
    signin: str | None,
    address: str | None,
) -> None:
    """Change one's own password: the current one first, then the new one by the rules of
    sign-up (`accounts.passwords`). Every other sign-in of the person ends (a thief who knew
    the old password is signed out); the one that asked (`signin`) goes on. Audited, and the
    address is told (if it was not them, they know to act)."""
    user = await check_password(rt, actor.id, current_password, address=address)
    await accounts.set_password(uow.app, rt.passwords, user, new_password, field="new_password")
    await revoke_user(uow, user.id, keep=signin)
    await send_password_notice(uow, rt.settings, user)
    audit(
        uow,
        "user.password_changed",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="user",
        target_id=user.id,
        data={"username": user.username},
    )
