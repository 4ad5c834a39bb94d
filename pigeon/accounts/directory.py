"""Who people are, as every domain reads them: principals (tier, role, communities,
standing), cached on the runtime, and the announcement that they changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from pigeon.accounts.models import Membership, User
from pigeon.core.events import PeopleChanged
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork


def changed(uow: UnitOfWork, *user_ids: int) -> None:
    """Every process (this one too) forgets these users once the change commits."""
    uow.control(PeopleChanged(user_ids=list(user_ids)))


# built once: a statement built per call leaves a cycle behind (SQLAlchemy's clause elements
# refer to themselves) for the collector, and the renewal reads people all day long
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_PRINCIPALS = select(
    User.id,
    User.username,
    User.display_name,
    User.tier,
    User.role,
    User.is_active,
    User.suspended_until,
    User.show_last_seen,
    User.read_receipts,
    User.email_verified_at,
).where(User.id.in_(_IDS))
_MEMBERSHIPS = select(Membership.user_id, Membership.community_id).where(
    Membership.user_id.in_(_IDS)
)


def _fetch_principals(conn: Connection, ids: set[int]) -> dict[int, Principal]:
    given = {"ids": list(ids)}
    users = conn.execute(_PRINCIPALS, given).all()
    rows = conn.execute(_MEMBERSHIPS, given)
    communities: dict[int, set[int]] = {}
    for user_id, community_id in rows:
        communities.setdefault(user_id, set()).add(community_id)
    return {
        u.id: Principal(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            tier=u.tier,
            role=u.role,
            is_active=u.is_active,
            suspended_until=u.suspended_until,
            community_ids=frozenset(communities.get(u.id, ())),
            shows_last_seen=u.show_last_seen,
            sends_receipts=u.read_receipts,
            email_verified=u.email_verified_at is not None,
        )
        for u in users
    }


async def load_principals(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, Principal]:
    """Principals read now, in this session (no cache)."""
    ids = set(user_ids)
    if not ids:
        return {}
    return await session.run_sync(lambda s: _fetch_principals(s.connection(), ids))


async def get_principal(rt: Runtime, user_id: int) -> Principal | None:
    """The cached principal; on a miss, one quick read."""
    return (await principals(rt, [user_id])).get(user_id)


async def principals(rt: Runtime, user_ids: Iterable[int]) -> dict[int, Principal]:
    """Principals by id, from the cache where fresh, the rest in one read."""
    found: dict[int, Principal] = {}
    missing = set()
    for uid in set(user_ids):
        hit = rt.people.principals.get(uid)
        if hit is not None:
            found[uid] = hit
        else:
            missing.add(uid)
    if missing:
        found.update(await read_principals(rt, missing))
    return found


async def read_principals(rt: Runtime, user_ids: set[int]) -> Mapping[int, Principal]:
    """Principals read now, and believed from now on (`core.people.Beliefs.read`)."""
    return await rt.people.principals.read(rt.dbs.app, _fetch_principals, user_ids)
