"""Accounts: users and profiles, communities and memberships, contacts, blocks.

Other domains read people through `Principal` (who is acting: tier, role, communities) and
`profiles()` (display data for many ids in one query), never through the tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts.models import Block, Community, Contact, Membership, User
from pigeon.accounts.passwords import check_new_password
from pigeon.core.audit import audit, audit_user_changes
from pigeon.core.clock import clock
from pigeon.core.db import rowcount
from pigeon.core.errors import Conflict, NotAllowed, NotFound
from pigeon.core.events import BlocksChanged, PeopleChanged
from pigeon.core.people import Edges
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.security import Passwords
from pigeon.core.text import contains
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings

# --- people as every domain reads them: principals and block edges, cached on the runtime ---


def changed(uow: UnitOfWork, *user_ids: int) -> None:
    """Every process (this one too) forgets these users once the change commits."""
    uow.control(PeopleChanged(user_ids=list(user_ids)))


def _fetch_principals(conn: Connection, ids: set[int]) -> dict[int, Principal]:
    users = conn.execute(
        select(
            User.id,
            User.username,
            User.display_name,
            User.tier,
            User.role,
            User.is_active,
            User.suspended_until,
        ).where(User.id.in_(ids))
    ).all()
    rows = conn.execute(
        select(Membership.user_id, Membership.community_id).where(Membership.user_id.in_(ids))
    )
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
        hit = rt.people.principal(uid)
        if hit is not None:
            found[uid] = hit
        else:
            missing.add(uid)
    if missing:
        loaded = await rt.dbs.app.run_read(lambda conn: _fetch_principals(conn, missing))
        rt.people.keep_principals(loaded.values())
        found.update(loaded)
    return found


# --- users ---


def normalize_username(username: str) -> str:
    return username.strip().lower()


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    return user


async def find_by_login(session: AsyncSession, login: str) -> User | None:
    key = login.strip().lower()
    return await session.scalar(select(User).where(or_(User.email == key, User.username == key)))


async def users_by_ids(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, User]:
    ids = set(user_ids)
    if not ids:
        return {}
    users = await session.scalars(select(User).where(User.id.in_(ids)))
    return {u.id: u for u in users}


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    username: str,
    password: str,
    passwords: Passwords,
    display_name: str | None = None,
    tier: str = "free",
    role: str = "member",
    join_default: bool = True,
    settings: Settings | None = None,
) -> User:
    """A new account (in the default community unless told otherwise).

    The password is checked against the rules and hashed before the first statement, so that
    no transaction (on SQLite: the write lock) waits on the hash: call this before the unit of
    work has written anything.
    """
    email, username = normalize_email(email), normalize_username(username)
    check_new_password(password, username=username, email=email)
    password_hash = await passwords.hash(password)
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("That email is already registered.", code="email_taken")
    if await session.scalar(select(User.id).where(User.username == username)):
        raise Conflict("That username is taken.", code="username_taken")
    user = User(
        email=email,
        username=username,
        password_hash=password_hash,
        display_name=(display_name or "").strip() or username,
        bio="",
        tier=tier,
        role=role,
        is_active=True,
        created_at=clock.now(),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict(
            "That email or username is already registered.", code="username_taken"
        ) from exc
    if join_default:
        community = await default_community(session, settings)
        session.add(Membership(community_id=community.id, user_id=user.id, joined_at=clock.now()))
        await session.flush()
    return user


async def authenticate(passwords: Passwords, user: User | None, password: str) -> User | None:
    """`user` if `password` is theirs, else None (also when there is no such user, after the
    same work). Read the user first and end that read: the check takes a while and should hold
    neither a transaction nor a pooled connection."""
    ok = await passwords.verify(user.password_hash if user else None, password)
    return user if ok and user else None


async def set_password(
    session: AsyncSession, passwords: Passwords, user: User, password: str
) -> None:
    """Check a new password against the rules and store its hash. Like `create_user`, it
    hashes before its statement: call it before the unit of work has written anything."""
    check_new_password(password, username=user.username, email=user.email)
    password_hash = await passwords.hash(password)
    await session.execute(
        update(User).where(User.id == user.id).values(password_hash=password_hash)
    )


async def update_profile(
    uow: UnitOfWork,
    user: User,
    *,
    display_name: str | None = None,
    bio: str | None = None,
    avatar_url: str | None = None,
) -> User:
    if display_name is not None:
        user.display_name = display_name.strip()
    if bio is not None:
        user.bio = bio.strip()
    if avatar_url is not None:
        user.avatar_url = avatar_url.strip() or None
    await uow.app.flush()
    changed(uow, user.id)
    return user


async def touch_last_seen(session: AsyncSession, user_id: int) -> dt.datetime:
    now = clock.now()
    user = await session.get(User, user_id)
    if user is not None:
        user.last_seen_at = now
        await session.flush()
    return now


async def search_users(
    session: AsyncSession, viewer: Principal, *, q: str, limit: int
) -> Sequence[User]:
    """People who share a community with the viewer, matched by username or display name."""
    if not viewer.community_ids:
        return []
    shared = select(Membership.user_id).where(Membership.community_id.in_(viewer.community_ids))
    stmt = (
        select(User)
        .where(User.id.in_(shared), User.id != viewer.id, User.is_active.is_(True))
        .where(or_(contains(User.username, q), contains(User.display_name, q)))
        .order_by(User.username)
        .limit(limit)
    )
    return (await session.scalars(stmt)).all()


def share_community(a: Principal, b: Principal) -> bool:
    return bool(a.community_ids & b.community_ids)


async def list_users(
    session: AsyncSession, *, q: str | None, limit: int, offset: int
) -> Sequence[User]:
    stmt = select(User).order_by(User.id).limit(limit).offset(offset)
    if q:
        stmt = stmt.where(
            or_(
                contains(User.username, q),
                contains(User.email, q),
                contains(User.display_name, q),
            )
        )
    return (await session.scalars(stmt)).all()


async def set_tier_role(
    uow: UnitOfWork,
    user: User,
    *,
    tier: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
    suspended_until: dt.datetime | None | bool = False,
) -> dict[str, tuple[object, object]]:
    """Apply changes; returns {field: (before, after)} for the audit log."""
    changes: dict[str, tuple[object, object]] = {}
    for name, value in (("tier", tier), ("role", role), ("is_active", is_active)):
        if value is not None and getattr(user, name) != value:
            changes[name] = (getattr(user, name), value)
            setattr(user, name, value)
    if suspended_until is not False and user.suspended_until != suspended_until:
        before = user.suspended_until.isoformat() if user.suspended_until else None
        after = suspended_until.isoformat() if isinstance(suspended_until, dt.datetime) else None
        changes["suspended_until"] = (before, after)
        user.suspended_until = suspended_until if isinstance(suspended_until, dt.datetime) else None
    if "role" in changes or changes.get("is_active") == (True, False):
        await _keep_an_admin(uow, user)
    await uow.app.flush()
    changed(uow, user.id)
    return changes


async def _keep_an_admin(uow: UnitOfWork, user: User) -> None:
    """Refuse a change that would leave the server with no active admin. The remaining admins
    are read (and on PostgreSQL locked) in the change's transaction, so two admins demoting
    each other at once cannot both succeed."""
    if user.role == "admin" and user.is_active:
        return
    others = await uow.app.scalars(
        select(User.id)
        .where(User.role == "admin", User.is_active.is_(True), User.id != user.id)
        .with_for_update()
    )
    if others.first() is None:
        raise Conflict(
            "This is the last admin; make someone else an admin first.", code="last_admin"
        )


async def update_user(
    uow: UnitOfWork,
    actor: Principal,
    user_id: int,
    *,
    display_name: str | None = None,
    bio: str | None = None,
    avatar_url: str | None = None,
    tier: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
) -> tuple[User, dict[str, tuple[object, object]]]:
    """Change a profile, and (admins only) a tier, role or whether the account is active.

    The one place for these rules, whichever page, route or command asks: people change their
    own profile, admins anyone's; only admins change standing; nobody demotes or disables
    themselves; the last admin stays an admin. Standing changes are audited. Returns the user
    and {field: (before, after)} of the standing that changed.
    """
    if user_id != actor.id and not actor.is_admin:
        raise NotAllowed("You can only change your own profile.", code="not_your_profile")
    standing = tier is not None or role is not None or is_active is not None
    if standing and not actor.is_admin:
        raise NotAllowed("Only admins change tiers and roles.", code="admin_only")
    if user_id == actor.id and (is_active is False or (role is not None and role != "admin")):
        raise NotAllowed("You cannot demote or disable yourself.", code="cannot_change_self")
    target = await get_user(uow.app, user_id)
    await update_profile(uow, target, display_name=display_name, bio=bio, avatar_url=avatar_url)
    changes = await set_tier_role(uow, target, tier=tier, role=role, is_active=is_active)
    audit_user_changes(
        uow.app,
        changes,
        actor_id=actor.id,
        actor_label=actor.username,
        user_id=target.id,
        username=target.username,
    )
    return target, changes


# --- communities ---


async def default_community(session: AsyncSession, settings: Settings | None = None) -> Community:
    """The community everyone who registers joins; made on first use, named by the settings."""
    community = await session.scalar(select(Community).where(Community.is_default.is_(True)))
    if community is None:
        community = Community(
            name=settings.default_community_name if settings else "The Store",
            slug=settings.default_community_slug if settings else "store",
            is_default=True,
            created_at=clock.now(),
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
    community = Community(name=name.strip(), slug=slug, is_default=False, created_at=clock.now())
    session.add(community)
    await session.flush()
    audit(
        session,
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


def check_manage_community(viewer: Principal, community_id: int) -> None:
    if viewer.is_admin:
        return
    if viewer.role in ("manager", "owner") and community_id in viewer.community_ids:
        return
    raise NotAllowed("Only admins and this community's managers can do that.")


async def community_members(session: AsyncSession, community_id: int) -> Sequence[User]:
    shared = select(Membership.user_id).where(Membership.community_id == community_id)
    return (await session.scalars(select(User).where(User.id.in_(shared)).order_by(User.id))).all()


async def add_members(
    uow: UnitOfWork, actor: Principal | None, community_id: int, user_ids: Iterable[int]
) -> int:
    """Admins and the community's managers add people (None: the CLI or the demo); audited.
    Returns how many were not members yet."""
    if actor is not None:
        check_manage_community(actor, community_id)
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
    now = clock.now()
    for uid in sorted(ids - already):
        session.add(Membership(community_id=community_id, user_id=uid, joined_at=now))
    await session.flush()
    changed(uow, *sorted(ids - already))
    audit(
        session,
        "community.members_added",
        actor_id=actor.id if actor else None,
        actor_label=actor.username if actor else "system",
        target_type="community",
        target_id=community_id,
        data={"user_ids": sorted(ids)},
    )
    return len(ids - already)


async def remove_member(uow: UnitOfWork, actor: Principal, community_id: int, user_id: int) -> None:
    """Admins and the community's managers remove people; audited."""
    check_manage_community(actor, community_id)
    await get_community(uow.app, community_id)
    result = await uow.app.execute(
        delete(Membership).where(
            Membership.community_id == community_id, Membership.user_id == user_id
        )
    )
    if not rowcount(result):
        raise NotFound("That person is not a member of this community.", code="not_a_member")
    changed(uow, user_id)
    audit(
        uow.app,
        "community.member_removed",
        actor_id=actor.id,
        actor_label=actor.username,
        target_type="community",
        target_id=community_id,
        data={"user_id": user_id},
    )


# --- contacts ---


async def list_contacts(session: AsyncSession, user_id: int) -> Sequence[User]:
    ids = select(Contact.contact_id).where(Contact.user_id == user_id)
    return (
        await session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username))
    ).all()


async def add_contact(session: AsyncSession, viewer: Principal, contact_id: int) -> User:
    if contact_id == viewer.id:
        raise NotAllowed("You cannot add yourself as a contact.", code="invalid_contact")
    other = await visible_user(session, viewer, contact_id)
    if not await session.get(Contact, (viewer.id, contact_id)):
        session.add(Contact(user_id=viewer.id, contact_id=contact_id, created_at=clock.now()))
        await session.flush()
    return other


async def remove_contact(session: AsyncSession, user_id: int, contact_id: int) -> None:
    result = await session.execute(
        delete(Contact).where(Contact.user_id == user_id, Contact.contact_id == contact_id)
    )
    if not rowcount(result):
        raise NotFound("That person is not in your contacts.", code="contact_not_found")


async def visible_user(session: AsyncSession, viewer: Principal, user_id: int) -> User:
    """A user the viewer may see: someone sharing a community (admins see everyone)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if user.id != viewer.id and not viewer.is_admin:
        other = (await load_principals(session, [user.id])).get(user.id)
        if other is None or not share_community(viewer, other):
            raise NotFound("No such user.", code="user_not_found")
    return user


# --- blocks ---


async def list_blocks(session: AsyncSession, user_id: int) -> Sequence[User]:
    ids = select(Block.blocked_id).where(Block.blocker_id == user_id)
    return (
        await session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username))
    ).all()


async def add_block(uow: UnitOfWork, viewer: Principal, user_id: int) -> User:
    session = uow.app
    if user_id == viewer.id:
        raise NotAllowed("You cannot block yourself.", code="invalid_block")
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if not await session.get(Block, (viewer.id, user_id)):
        session.add(Block(blocker_id=viewer.id, blocked_id=user_id, created_at=clock.now()))
        await session.flush()
    _edges_changed(uow, viewer.id, user_id)
    return user


async def remove_block(uow: UnitOfWork, viewer_id: int, user_id: int) -> None:
    result = await uow.app.execute(
        delete(Block).where(Block.blocker_id == viewer_id, Block.blocked_id == user_id)
    )
    if not rowcount(result):
        raise NotFound("You have not blocked that person.", code="block_not_found")
    _edges_changed(uow, viewer_id, user_id)


async def blocks_among(
    session: AsyncSession, user_id: int, others: Iterable[int]
) -> set[tuple[int, int]]:
    """(blocker, blocked) pairs between `user_id` and any of `others`, in either direction."""
    ids = set(others)
    if not ids:
        return set()
    rows = await session.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(
                (Block.blocker_id == user_id) & Block.blocked_id.in_(ids),
                (Block.blocked_id == user_id) & Block.blocker_id.in_(ids),
            )
        )
    )
    return {(a, b) for a, b in rows}


def _fetch_edges(conn: Connection, user_id: int) -> Edges:
    rows = conn.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(Block.blocker_id == user_id, Block.blocked_id == user_id)
        )
    )
    return frozenset((a, b) for a, b in rows)


async def get_block_edges(rt: Runtime, user_id: int) -> Edges:
    """Every (blocker, blocked) pair that involves `user_id`, cached on the runtime: the send
    path reads this on every message, and a block made anywhere applies at once."""
    hit = rt.people.edges(user_id)
    if hit is not None:
        return hit
    edges = await rt.dbs.app.run_read(lambda conn: _fetch_edges(conn, user_id))
    rt.people.keep_edges(user_id, edges)
    return edges


def _edges_changed(uow: UnitOfWork, *user_ids: int) -> None:
    uow.control(BlocksChanged(user_ids=list(user_ids)))


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(User.id))) or 0)
