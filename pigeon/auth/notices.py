"""Emails about the account that `auth.service` sends too: the verification link (on sign-up
and when asked again) and the notice that the password changed.

Apart from `account_email`, which builds on `auth.service`, so that the service can send them.
"""

from __future__ import annotations

from pigeon.accounts.models import User
from pigeon.auth import account_tokens
from pigeon.core.uow import UnitOfWork
from pigeon.email.outbox import queue_email
from pigeon.settings import Settings


async def send_verification(uow: UnitOfWork, settings: Settings, user: User) -> None:
    """A fresh link to `user`'s address, queued in the caller's transaction (a sign-up that
    rolls back sends nothing); earlier links stop working."""
    token = await account_tokens.issue(
        uow, settings, user_id=user.id, purpose="verify_email", new_email=user.email
    )
    await queue_email(
        uow,
        user.email,
        "verify_email",
        {
            "name": user.display_name,
            "path": f"/verify-email?token={token}",
            "hours": _hours(settings.verify_email_hours),
        },
        kind="verify_email",
        settings=settings,
    )


async def send_password_notice(uow: UnitOfWork, settings: Settings, user: User) -> None:
    """Tell the owner their password changed: if it was not them, they know to act."""
    await queue_email(
        uow,
        user.email,
        "password_changed",
        {"name": user.display_name, "username": user.username},
        kind="password_changed",
        settings=settings,
    )


def _hours(value: float) -> str:
    return f"{value:g}"
