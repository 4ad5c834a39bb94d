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
from pigeon.core.errors import Invalid
from pigeon.core.principal import Principal
from pigeon.core.ratelimit import Limiter
from pigeon.core.runtime import Runtime
from pigeon.core.switches import MESSAGING_ENABLED, MODES, mode_of, stored
from pigeon.core.uow import UnitOfWork


async def set_messaging(
    rt: Runtime, uow: UnitOfWork, enabled: bool, *, actor_id: int | None, actor_label: str
) -> bool:
    """Turn messaging on or off; see `set_messaging_mode`."""
    mode = "on" if enabled else "off"
    return await set_messaging_mode(rt, uow, mode, actor_id=actor_id, actor_label=actor_label)


async def set_messaging_mode(
    rt: Runtime, uow: UnitOfWork, mode: str, *, actor_id: int | None, actor_label: str
) -> bool:
    """Put the switch on, off or read-only; on and read-only create or upgrade the messaging
    database first.

    Returns whether the mode changed. Every call is audited, including no-op ones, so the log
    shows who asked for what and when. Off and read-only delete nothing.
    """
    if mode not in MODES:
        raise Invalid(f"mode must be one of {', '.join(MODES)}.", fields={"mode": "unknown"})
    if mode != "off":
        await migrate.upgrade(rt.dbs.messaging)
    previous = await rt.switches.set(uow, MESSAGING_ENABLED, stored(mode), actor_id=actor_id)
    before = mode_of(previous)
    action = {"on": "messaging.enabled", "off": "messaging.disabled"}.get(
        mode, "messaging.read_only"
    )
    audit(
        uow,
        action,
        actor_id=actor_id,
        actor_label=actor_label,
        target_type="setting",
        data={"key": MESSAGING_ENABLED, "before": before, "after": mode},
    )
    return before != mode


async def update_user(
    uow: UnitOfWork,
    actor: Principal,
    user_id: int,
    *,
    limiter: Limiter,
    tier: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> User:
    """An admin changes someone's standing; disabling an account ends its sign-ins."""
    target, changes = await accounts.update_user(
        uow, actor, user_id, limiter=limiter, tier=tier, role=role, is_active=is_active
    )
    if changes.get("is_active") == (True, False):
        await auth.revoke_user(uow, target.id)
    return target
