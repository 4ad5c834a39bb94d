"""Communities (the store, a club) and who belongs to them.

Admins create communities and add people directly; anyone else joins by consent (an
invitation they accept). Admins and a community's managers remove people of lower rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts.directory import changed, load_principals
from pigeon.accounts.models import Community, Membership, User
from pigeon.core.audit import audit
from pigeon.core.db import rowcount
from pigeon.core.errors import Conflict, NotAllowed, NotFound
from pigeon.core.principal import Principal, outranks
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings


async def default_community(uow: UnitOfWork, settings: Settings | None = None) -> Community:
    """The community everyone who registers joins; made on first use, named by the settings."""
    session = uow.app
    community = await session.scalar(select(Community).where(Community.is_default.is_(True)))
    if community is None:
        community = Community(
            name=settings.default_community_name if settings else "The Store",
            slug=settings.default_community_slug if settings else "store",
            is_default=True,
            created_at=uow.clock.now(),
        )
        session.add(community)
        await session.flush()
    return community


async def list_communities(session: AsyncSession, viewer: Principal) -> Sequence[Community]:
    stmt = select(Community).order_by(Community.id)
    if not viewer.is_admin:
        stmt = stmt.where(Community.id.in_(viewer.community_ids or {-1}))
    return (await session.scalars(stmt)).all()


async def create_community(
    uow: UnitOfWork, actor: Principal | None, *, name: str, slug: str
) -> Community:
    """Admins create communities (None: the CLI or the demo); audited."""
    if actor is not None and not actor.is_admin:
        raise NotAllowed("Only admins can do that.", code="admin_only")
    session = uow.app
    slug = slug.strip().lower()
    if await session.scalar(select(Community.id).where(Community.slug == slug)):
        raise Conflict("A community with that slug exists.", code="slug_taken")
    community = Community(
        name=name.strip(), slug=slug, is_default=False, created_at=uow.clock.now()
    )
    session.add(community)
    await session.flush()
    audit(
        uow,
        "community.created",
        actor_id=actor.id if actor else None,
        actor_label=actor.username if actor else "system",
        target_type="community",
        target_id=community.id,
        data={"slug": community.slug},
    )
    return community


async def get_community(session: AsyncSession, community_id: int) -> Community:
    community = await session.get(Community, community_id)
    if community is None:
        raise NotFound("No such community.", code="community_not_found")
    return community


async def community_by_slug(session: AsyncSession, slug: str) -> Community:
    community = await session.scalar(
        select(Community).where(Community.slug == slug.strip().lower())
    )
    if community is None:
        raise NotFound(f"No community with the slug {slug!r}.", code="community_not_found")
    return community


def check_manage_community(viewer: Principal, community_id: int) -> None:
    if viewer.is_admin:
        return
    if viewer.role in ("manager", "owner") and community_id in viewer.community_ids:
        return
    raise NotAllowed("Only admins and this community's managers can do that.")


async def community_members(session: AsyncSession, community_id: int) -> Sequence[User]:
    shared = select(Membership.user_id).where(Membership.community_id == community_id)
    return (await session.scalars(select(User).where(User.id.in_(shared)).order_by(User.id))).all()


async def is_member(session: AsyncSession, community_id: int, user_id: int) -> bool:
    found = await session.scalar(
        select(Membership.user_id).where(
            Membership.community_id == community_id, Membership.user_id == user_id
        )
    )
    return found is not None


async def join(uow: UnitOfWork, community_id: int, user_id: int) -> bool:
    """Make someone a member (once they consented: an invitation they used); True if they
    were not one yet. The caller audits: it knows why they joined."""
    if await is_member(uow.app, community_id, user_id):
        return False
    uow.app.add(Membership(community_id=community_id, user_id=user_id, joined_at=uow.clock.now()))
    await uow.app.flush()
    changed(uow, user_id)
    return True


async def add_members(
    uow: UnitOfWork, actor: Principal | None, community_id: int, user_ids: Iterable[int]
) -> int:
    """Admins add people to a community directly (None: the CLI or the demo); audited.
    Returns how many were not members yet. Anyone else joins by consent (an invitation they
    accept): a manager cannot pull a stranger into their community, and with them into reach
    of their moderation."""
    if actor is not None and not actor.is_admin:
        check_manage_community(actor, community_id)
        raise NotAllowed(
            "People join a community by accepting an invitation; only an admin adds someone "
            "directly.",
            code="consent_required",
        )
    session = uow.app
    await get_community(session, community_id)
    ids = set(user_ids)
    existing_users = set(await session.scalars(select(User.id).where(User.id.in_(ids))))
    missing = ids - existing_users
    if missing:
        raise NotFound(f"No such user: {min(missing)}.", code="user_not_found")
    already = set(
        await session.scalars(
            select(Membership.user_id).where(
                Membership.community_id == community_id, Membership.user_id.in_(ids)
            )
        )
    )
    now = uow.clock.now()
    for uid in sorted(ids - already):
        session.add(Membership(community_id=community_id, user_id=uid, joined_at=now))
    await session.flush()
    changed(uow, *sorted(ids - already))
    audit(
        uow,
        "community.members_added",
        actor_id=actor.id if actor else None,
        actor_label=actor.username if actor else "system",
        target_type="community",
        target_id=community_id,
        data={"user_ids": sorted(ids)},
    )
    return len(ids - already)


async def remove_member(uow: UnitOfWork, actor: Principal, community_id: int, user_id: int) -> None:
    """Admins and the community's managers remove people; audited. A manager removes only
    members of lower rank (never staff of their own rank or above)."""
    check_manage_community(actor, community_id)
    await get_community(uow.app, community_id)
    target = (await load_principals(uow.app, [user_id])).get(user_id)
    if target is None or community_id not in target.community_ids:
        raise NotFound("That person is not a member of this community.", code="not_a_member")
    if not outranks(actor, target):
        raise NotAllowed("You cannot remove someone of your rank or above.", code="outranked")
    result = await uow.app.execute(
        delete(Membership).where(
            Membership.community_id == community_id, Membership.user_id == user_id
        )
    )
    if not rowcount(result):
        raise NotFound("That person is not a member of this community.", code="not_a_member")
    changed(uow, user_id)
    audit(
        uow,
        "community.member_removed",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="community",
        target_id=community_id,
        data={"user_id": user_id},
    )
