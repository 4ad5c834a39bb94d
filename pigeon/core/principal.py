"""Who is acting, with what a policy decision needs: every domain reads people this way."""

from __future__ import annotations

import dataclasses
import datetime as dt

STAFF_ROLES = ("manager", "owner", "admin")
RANK = {"member": 0, "manager": 1, "owner": 2, "admin": 3}


@dataclasses.dataclass(frozen=True, slots=True)
class Principal:
    """Who is acting, with what a policy decision needs."""

    id: int
    username: str
    display_name: str
    tier: str
    role: str
    is_active: bool
    suspended_until: dt.datetime | None
    community_ids: frozenset[int]
    shows_last_seen: bool = True  # online and last seen, for others to see
    sends_receipts: bool = True  # how far they have read, for others to see
    email_verified: bool = True  # False: the pages ask them to follow the link we emailed

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def is_suspended(self, now: dt.datetime) -> bool:
        if not self.is_active:
            return True
        return self.suspended_until is not None and self.suspended_until > now


def outranks(actor: Principal, target: Principal) -> bool:
    """Whether `actor` may act on `target` as staff (remove, suspend): never on oneself; an
    admin on anyone else; anyone else only on people of a lower role."""
    if actor.id == target.id:
        return False
    return actor.is_admin or RANK.get(actor.role, 0) > RANK.get(target.role, 0)
