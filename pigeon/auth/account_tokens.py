"""Single-use links sent by email: issue one, look one up, spend one.

The link carries a random token; the table keeps its digest only, so a copy of the database
gives nobody a way in. A token is spent by one conditional update (`redeem`): of two requests
with the same link at the same moment, exactly one changes the row and goes on, on SQLite and
PostgreSQL alike. Issuing a token revokes the person's older live ones of the same purpose, so
only the newest link they were sent works. Lifetimes are settings (`lifetime`).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.auth.models import AccountToken
from pigeon.core.db import rowcount
from pigeon.core.errors import BadRequest
from pigeon.core.security import new_opaque_token, token_digest
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings

Purpose = Literal["verify_email", "reset_password", "change_email"]


class LinkInvalid(BadRequest):
    """The same answer for a token never issued, spent, replaced or expired: the holder can
    only ask for a new link, and the answer tells a guesser nothing."""

    code = "invalid_link"
    message = "This link has expired or was already used; ask for a new one."


def lifetime(settings: Settings, purpose: Purpose) -> dt.timedelta:
    if purpose == "verify_email":
        return dt.timedelta(hours=settings.verify_email_hours)
    if purpose == "reset_password":
        return dt.timedelta(minutes=settings.reset_password_minutes)
    return dt.timedelta(hours=settings.change_email_hours)


async def issue(
    uow: UnitOfWork,
    settings: Settings,
    *,
    user_id: int,
    purpose: Purpose,
    new_email: str | None = None,
) -> str:
    """A new token for this person and purpose (their older live ones stop working); the
    token itself, to put in the link, is returned and kept nowhere."""
    await revoke(uow, user_id, purpose)
    token, now = new_opaque_token(), uow.clock.now()
    uow.app.add(
        AccountToken(
            user_id=user_id,
            purpose=purpose,
            token_hash=token_digest(token),
            new_email=new_email,
            created_at=now,
            expires_at=now + lifetime(settings, purpose),
        )
    )
    await uow.app.flush()
    return token


async def decoy(uow: UnitOfWork) -> None:
    """The database work of issuing a token, for a request that must not show it issued none
    (a reset asked for an address no account uses): one indexed statement on this table, as
    storing a token is, matching nothing."""
    digest = token_digest(new_opaque_token())
    await uow.app.execute(select(AccountToken.id).where(AccountToken.token_hash == digest))


async def revoke(uow: UnitOfWork, user_id: int, *purposes: Purpose) -> None:
    """The person's live tokens of these purposes (of every purpose, when none is named) stop
    working. An address that changed takes every link sent to the old one with it."""
    stmt = update(AccountToken).where(
        AccountToken.user_id == user_id,
        AccountToken.used_at.is_(None),
        AccountToken.revoked_at.is_(None),
    )
    if purposes:
        stmt = stmt.where(AccountToken.purpose.in_(purposes))
    await uow.app.execute(stmt.values(revoked_at=uow.clock.now()))


async def peek(
    session: AsyncSession, token: str, purpose: Purpose, now: dt.datetime
) -> AccountToken:
    """The live token, without spending it (a page deciding whether to show its form);
    LinkInvalid otherwise."""
    row = await session.scalar(
        select(AccountToken).where(
            AccountToken.token_hash == token_digest(token), AccountToken.purpose == purpose
        )
    )
    if row is None or row.used_at is not None or row.revoked_at is not None:
        raise LinkInvalid()
    if row.expires_at <= now:
        raise LinkInvalid()
    return row


async def redeem(uow: UnitOfWork, token: str, purpose: Purpose) -> AccountToken:
    """Spend the token: live, of this purpose, and not spent by anyone else meanwhile (one
    conditional update decides); LinkInvalid otherwise. The caller's change rides in the same
    transaction, so a failure after this undoes the spending too."""
    now, digest = uow.clock.now(), token_digest(token)
    spent = await uow.app.execute(
        update(AccountToken)
        .where(
            AccountToken.token_hash == digest,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
            AccountToken.revoked_at.is_(None),
            AccountToken.expires_at > now,
        )
        .values(used_at=now)
    )
    if not rowcount(spent):
        raise LinkInvalid()
    row = await uow.app.scalar(select(AccountToken).where(AccountToken.token_hash == digest))
    assert row is not None  # just updated, in this transaction
    return row


async def pending_email(session: AsyncSession, user_id: int, now: dt.datetime) -> str | None:
    """The address a change of email is waiting to be confirmed for, if any."""
    return await session.scalar(
        select(AccountToken.new_email)
        .where(
            AccountToken.user_id == user_id,
            AccountToken.purpose == "change_email",
            AccountToken.used_at.is_(None),
            AccountToken.revoked_at.is_(None),
            AccountToken.expires_at > now,
        )
        .order_by(AccountToken.id.desc())
        .limit(1)
    )
