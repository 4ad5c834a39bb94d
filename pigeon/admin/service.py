"""What admins change: the messaging switch, and people's standing (tier, role, active).

The rules of a standing change live in `accounts.update_user`; what only an admin action adds
(ending a disabled account's sign-ins) is here, for the JSON API, the admin page and the CLI.
"""

from __future__ import annotations

from pigeon.accounts import service as accounts
from pigeon.accounts.models import User
from pigeon.auth import service as auth
from pigeon.core import migrate
from pigeon.core.audit import audit
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.switches import MESSAGING_ENABLED
from pigeon.core.uow import UnitOfWork


async def set_messaging(
    rt: Runtime, uow: UnitOfWork, enabled: bool, *, actor_id: int | None, actor_label: str
) -> bool:
    """Turn messaging on or off; on creates or upgrades the messaging database first.

    Returns whether the value changed. Every call is audited, including no-op ones, so the log
    shows who asked for what and when. Turning it off deletes nothing.
    """
    if enabled:
        await migrate.upgrade(rt.dbs.messaging)
    before = bool(await rt.switches.set(uow, MESSAGING_ENABLED, enabled, actor_id=actor_id))
    audit(
        uow,
        "messaging.enabled" if enabled else "messaging.disabled",
        actor_id=actor_id,
        actor_label=actor_label,
        target_type="setting",
        data={"key": MESSAGING_ENABLED, "before": before, "after": enabled},
    )
    return before != enabled


async def update_user(
    uow: UnitOfWork,
    actor: Principal,
    user_id: int,
    *,
    tier: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> User:
    """An admin changes someone's standing; disabling an account ends its sign-ins."""
    target, changes = await accounts.update_user(
        uow, actor, user_id, tier=tier, role=role, is_active=is_active
    )
    if changes.get("is_active") == (True, False):
        await auth.revoke_user(uow, target.id)
    return target
