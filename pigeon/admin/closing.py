"""Deleting an account: by its owner (with their password), or by an admin.

It spans every domain, which is why it lives here, the lowest layer that sees them all: the
messaging database first (`messaging.departure`: groups left, messages kept or removed), then
the primary one (`accounts.anonymise`: the person's data gone, the row kept as a tombstone),
then every sign-in ended (`auth.revoke_user`), which closes their live connections in every
process as a suspension does, and every push device forgotten. One unit of work; the messaging
half is idempotent, so if the primary database fails after it committed, asking again finishes
the job.

Rules: one's own account needs one's password (counted like a sign-in); the last active admin
cannot delete themselves; an admin deletes someone else only where `outranks` allows (never
themselves this way). Both are audited.
"""

from __future__ import annotations

from pigeon.accounts import directory
from pigeon.accounts import service as accounts
from pigeon.auth import service as auth
from pigeon.core import migrate
from pigeon.core.audit import audit
from pigeon.core.errors import NotAllowed, NotFound
from pigeon.core.principal import Principal, outranks
from pigeon.messaging import departure
from pigeon.messaging.context import Ctx
from pigeon.messaging.departure import MessagesChoice
from pigeon.push import service as push


async def delete_own_account(
    ctx: Ctx, *, password: str, messages: MessagesChoice, address: str | None
) -> None:
    """The signed-in person deletes their account, after entering their password again."""
    await auth.check_password(ctx.rt, ctx.viewer.id, password, address=address)
    await _delete(ctx, ctx.viewer.id, messages=messages)


async def delete_account(ctx: Ctx, user_id: int, *, messages: MessagesChoice) -> None:
    """An admin deletes someone else's account (no password: theirs is not the admin's)."""
    await check_can_delete(ctx, user_id)
    await _delete(ctx, user_id, messages=messages)


async def check_can_delete(ctx: Ctx, user_id: int) -> Principal:
    """The person an admin may delete (the confirm page asks this before it shows)."""
    actor = ctx.viewer
    if not actor.is_admin:
        raise NotAllowed("Only admins can delete someone's account.", code="admin_only")
    if user_id == actor.id:
        raise NotAllowed(
            "Delete your own account from your profile, with your password.",
            code="cannot_change_self",
        )
    target = await directory.get_principal(ctx.rt, user_id)
    if target is None:
        raise NotFound("No such user.", code="user_not_found")
    if not outranks(actor, target):
        raise NotAllowed("You cannot delete this account.", code="admin_only")
    return target


async def _delete(ctx: Ctx, user_id: int, *, messages: MessagesChoice) -> None:
    uow, actor = ctx.uow, ctx.viewer
    user = await accounts.get_user(uow.app, user_id)
    if user.deleted_at is not None:
        raise NotFound("No such user.", code="user_not_found")
    username = user.username
    if await _messaging_exists(ctx):
        await departure.depart(ctx, user_id, messages=messages)
    await accounts.anonymise(uow, user)
    await auth.revoke_user(uow, user_id)
    await push.forget_user(uow, user_id)  # their devices hear nothing more
    audit(
        uow,
        "user.deleted",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="user",
        target_id=user_id,
        data={"username": username, "messages": messages},
    )


async def _messaging_exists(ctx: Ctx) -> bool:
    """Whether the messaging database was ever created (messaging switched on once): a fresh
    install that never had it holds nothing of anyone there."""
    return await migrate.exists(ctx.rt.dbs.messaging)
