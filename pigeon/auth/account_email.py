"""The account's email: verifying it, resetting a forgotten password through it, changing it.

Every path (the JSON API, the pages) calls these; each writes its change, its audit entry and
its email in one transaction, so an email goes out exactly when the change commits.

Rules:
- verify: a live `verify_email` link for the address the account still has marks it verified;
- forgotten password: the same answer, and the same work, whether or not an account uses the
  address (`forgot_password`); limited per client address and per address asked about;
- reset: the new password by the rules of sign-up, then the link is spent (one winner), every
  sign-in of the account ends, the address counts as verified, and a notice goes to it;
- change of email: the current password first (counted like a sign-in, 403 `wrong_password`);
  the answer does not say whether the new address is free: a free one gets a link, a taken
  one a note that it is in use; the change happens only when the link is followed, and then
  the old address is told and every link sent to it stops working.
"""

from __future__ import annotations

from typing import Any

from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.auth import account_tokens
from pigeon.auth import service as auth
from pigeon.auth.account_tokens import LinkInvalid
from pigeon.auth.notices import send_password_notice, send_verification
from pigeon.core.audit import audit
from pigeon.core.errors import Conflict, Invalid
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork
from pigeon.email.outbox import queue_email

# what a client is told after asking for a reset, whoever uses the address
FORGOT_ANSWER = (
    "If an account uses that address, we sent it a link to choose a new password. "
    "Check your inbox (and the spam folder)."
)


def mask(email: str) -> str:
    """ "r•••@example.org": enough for the owner to recognise, not to give it away."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}•••@{domain}"


async def resend_verification(rt: Runtime, uow: UnitOfWork, actor: Principal) -> str:
    """A new verification link to the signed-in person's address (which is returned)."""
    user = await accounts.get_user(uow.app, actor.id)
    if user.email_verified_at is not None:
        raise Conflict("Your email address is already verified.", code="already_verified")
    await rt.limiter.check_account_email(actor.id)
    await send_verification(uow, rt.settings, user)
    return user.email


def _audit_own(
    uow: UnitOfWork, user: User, action: str, data: dict[str, Any] | None = None
) -> None:
    """A step someone took on their own account, for the audit log."""
    audit(
        uow,
        action,
        actor_id=user.id,
        actor_label=user.username,
        target_type="user",
        target_id=user.id,
        data={"username": user.username, **(data or {})},
    )


async def verify_email(uow: UnitOfWork, token: str) -> User:
    """Follow a verification link: the account's address is verified (again is harmless)."""
    row = await account_tokens.redeem(uow, token, "verify_email")
    user = await accounts.get_user(uow.app, row.user_id)
    if user.deleted_at is not None or row.new_email != user.email:
        raise LinkInvalid()
    if await accounts.mark_email_verified(uow, user):
        _audit_own(uow, user, "user.email_verified")
    return user


async def forgot_password(rt: Runtime, uow: UnitOfWork, *, email: str, address: str | None) -> None:
    """Send a reset link if an account uses `email`, else a note saying none does.

    Neither the answer nor its timing may tell which: both paths are limited the same way and
    run the same statements in the same order: look the address up, revoke earlier links (for
    an unknown address the same statement matches nobody), make a token and touch the token
    table once (the known path stores it, the other looks one up: `account_tokens.decoy`),
    render one email, add one outbox row and one audit entry, and commit. The note to an
    unknown address tells a person who mistyped or forgot which address they used; it reaches
    only that address, so it tells nobody else anything.
    """
    email = accounts.normalize_email(email)
    await rt.limiter.check_forgot(email=email, address=address)
    settings = rt.settings
    user = await accounts.find_by_email(uow.app, email)
    minutes = f"{settings.reset_password_minutes:g}"
    if user is not None:
        token = await account_tokens.issue(uow, settings, user_id=user.id, purpose="reset_password")
        context = {"name": user.display_name, "path": f"/password/reset?token={token}"}
        template, target = "reset_password", user.id
    else:
        await account_tokens.revoke(uow, 0, "reset_password")  # matches nobody, as a rule
        await account_tokens.decoy(uow)  # where the known path stores its token
        context, template, target = {"address": email}, "reset_password_unknown", None
    await queue_email(
        uow,
        email,
        template,
        {**context, "minutes": minutes},
        kind="reset_password",
        settings=settings,
    )
    audit(
        uow,
        "user.password_reset_requested",
        actor_id=None,
        actor_label=address or "unknown",
        target_type="user" if target else None,
        target_id=target,
        data={"known": target is not None},
    )


async def check_reset_link(rt: Runtime, token: str) -> None:
    """LinkInvalid unless the reset link is live: the page shows its form only then."""
    async with rt.dbs.app.read() as session:
        await account_tokens.peek(session, token, "reset_password", rt.clock.now())


async def reset_password(rt: Runtime, uow: UnitOfWork, *, token: str, password: str) -> User:
    """Choose a new password through a reset link.

    The link is read (not spent) and the password checked and hashed before anything is
    written, so a refused password leaves the link usable and no lock waits on the hash; then
    the link is spent, and of two uses at once only one gets this far."""
    async with rt.dbs.app.read() as session:
        row = await account_tokens.peek(session, token, "reset_password", rt.clock.now())
        user = await accounts.get_user(session, row.user_id)
    if user.deleted_at is not None:
        raise LinkInvalid()
    await accounts.set_password(uow.app, rt.passwords, user, password)
    await account_tokens.redeem(uow, token, "reset_password")
    await account_tokens.revoke(uow, user.id, "reset_password")
    await auth.revoke_user(uow, user.id)
    user = await accounts.get_user(uow.app, user.id)
    await accounts.mark_email_verified(uow, user)  # they read mail sent to it
    await send_password_notice(uow, rt.settings, user)
    _audit_own(uow, user, "user.password_reset")
    return user


async def request_email_change(
    rt: Runtime,
    uow: UnitOfWork,
    actor: Principal,
    *,
    password: str,
    email: str,
    address: str | None,
) -> str:
    """Ask to move the account to `email`; nothing changes until the emailed link is followed.
    Returns the (normalised) address the change waits on, whether or not it is free."""
    user = await auth.check_password(rt, actor.id, password, address=address)
    new = accounts.normalize_email(email)
    if new == user.email:
        problem = "That is already your email address."
        raise Invalid(problem, code="same_email", fields={"email": problem})
    await rt.limiter.check_account_email(actor.id)
    settings = rt.settings
    taken = await accounts.find_by_email(uow.app, new)
    # a token either way, so the profile shows the change waiting whether or not it can happen
    token = await account_tokens.issue(
        uow, settings, user_id=user.id, purpose="change_email", new_email=new
    )
    context = {"name": user.display_name, "hours": f"{settings.change_email_hours:g}"}
    if taken is None:
        template = "confirm_email"
        context["path"] = f"/confirm-email?token={token}"
    else:
        template = "email_in_use"
    await queue_email(uow, new, template, context, kind="change_email", settings=settings)
    audit(
        uow,
        "user.email_change_requested",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="user",
        target_id=user.id,
        data={"username": user.username},
    )
    return new


async def confirm_email_change(rt: Runtime, uow: UnitOfWork, token: str) -> User:
    """Follow the link sent to the new address: the account takes it, verified; the old
    address is told, and every link sent to it stops working."""
    row = await account_tokens.redeem(uow, token, "change_email")
    user = await accounts.get_user(uow.app, row.user_id)
    if user.deleted_at is not None or row.new_email is None:
        raise LinkInvalid()
    old = await accounts.set_email(uow, user, row.new_email)
    await account_tokens.revoke(uow, user.id)
    await queue_email(
        uow,
        old,
        "email_changed",
        {"name": user.display_name, "username": user.username, "new": mask(user.email)},
        kind="email_changed",
        settings=rt.settings,
    )
    _audit_own(uow, user, "user.email_changed", {"from": old, "to": user.email})
    return user


async def pending_email(rt: Runtime, user_id: int) -> str | None:
    async with rt.dbs.app.read() as session:
        return await account_tokens.pending_email(session, user_id, rt.clock.now())
