"""Accounts: users and profiles, communities and memberships, contacts, blocks.

Other domains read people through `Principal` (who is acting: tier, role, communities) and
`profiles()` (display data for many ids in one query), never through the tables.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts.models import STAFF_ROLES, Block, Community, Contact, Membership, User
from pigeon.core.clock import clock
from pigeon.core.db import Database
from pigeon.core.errors import Conflict, NotAllowed, NotFound
from pigeon.core.events import emit_control
from pigeon.core.security import hash_password, verify_password
from pigeon.core.text import contains


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

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def is_suspended(self, now: dt.datetime | None = None) -> bool:
        if not self.is_active:
            return True
        return self.suspended_until is not None and self.suspended_until > (now or clock.now())


# --- the principal cache: a second at most of staleness, so every process sees changes fast ---

# Every change made here is announced on the control channel (every process forgets the user at
# once), so the expiry is only a backstop for an announcement that never arrived.
_CACHE_SECONDS = 10.0
_principals: dict[int, tuple[float, Principal]] = {}


def forget(user_id: int) -> None:
    _principals.pop(user_id, None)


def changed(session: AsyncSession, *user_ids: int) -> None:
    """Forget these users here now, and in every process once the change commits."""
    for uid in user_ids:
        forget(uid)
    emit_control(session, "user.changed", {"user_ids": list(user_ids)})


def forget_all() -> None:
    _principals.clear()
    _edges.clear()


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
    until = clock.monotonic() + _CACHE_SECONDS
    found = {}
    for u in users:
        p = Principal(*u, community_ids=frozenset(communities.get(u.id, ())))
        _principals[u.id] = (until, p)
        found[u.id] = p
    return found


async def load_principals(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, Principal]:
    ids = set(user_ids)
    if not ids:
        return {}
    return await session.run_sync(lambda s: _fetch_principals(s.connection(), ids))


async def principal(session: AsyncSession, user_id: int) -> Principal | None:
    hit = _principals.get(user_id)
    if hit and hit[0] > clock.monotonic():
        return hit[1]
    return (await load_principals(session, [user_id])).get(user_id)


async def get_principal(db: Database, user_id: int) -> Principal | None:
    """The cached principal; on a miss, one quick read."""
    hit = _principals.get(user_id)
    if hit and hit[0] > clock.monotonic():
        return hit[1]
    return (await db.run_read(lambda conn: _fetch_principals(conn, {user_id}))).get(user_id)


async def principals(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, Principal]:
    now = clock.monotonic()
    found: dict[int, Principal] = {}
    missing = []
    for uid in set(user_ids):
        hit = _principals.get(uid)
        if hit and hit[0] > now:
            found[uid] = hit[1]
        else:
            missing.append(uid)
    found.update(await load_principals(session, missing))
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
    display_name: str | None = None,
    tier: str = "free",
    role: str = "member",
    join_default: bool = True,
) -> User:
    email, username = normalize_email(email), normalize_username(username)
    if await session.scalar(select(User.id).where(User.email == email)):
        raise Conflict("That email is already registered.", code="email_taken")
    if await session.scalar(select(User.id).where(User.username == username)):
        raise Conflict("That username is taken.", code="username_taken")
    user = User(
        email=email,
        username=username,
        password_hash=hash_password(password),
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
        community = await default_community(session)
        session.add(Membership(community_id=community.id, user_id=user.id, joined_at=clock.now()))
        await session.flush()
    return user


async def authenticate(session: AsyncSession, login: str, password: str) -> User | None:
    user = await find_by_login(session, login)
    ok = verify_password(user.password_hash if user else None, password)
    return user if ok and user else None


async def set_password(session: AsyncSession, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    await session.flush()


async def update_profile(
    session: AsyncSession,
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
    await session.flush()
    changed(session, user.id)
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
    session: AsyncSession,
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
        user.suspended_until = suspended_until  # type: ignore[assignment]
    await session.flush()
    changed(session, user.id)
    return changes


# --- communities ---


async def default_community(session: AsyncSession) -> Community:
    from pigeon.settings import get_settings

    community = await session.scalar(select(Community).where(Community.is_default.is_(True)))
    if community is None:
        s = get_settings()
        community = Community(
            name=s.default_community_name,
            slug=s.default_community_slug,
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


async def create_community(session: AsyncSession, *, name: str, slug: str) -> Community:
    slug = slug.strip().lower()
    if await session.scalar(select(Community.id).where(Community.slug == slug)):
        raise Conflict("A community with that slug exists.", code="slug_taken")
    community = Community(name=name.strip(), slug=slug, is_default=False, created_at=clock.now())
    session.add(community)
    await session.flush()
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


async def add_members(session: AsyncSession, community_id: int, user_ids: Iterable[int]) -> int:
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
        changed(session, uid)
    await session.flush()
    return len(ids - already)


async def remove_member(session: AsyncSession, community_id: int, user_id: int) -> None:
    result = await session.execute(
        delete(Membership).where(
            Membership.community_id == community_id, Membership.user_id == user_id
        )
    )
    if not result.rowcount:
        raise NotFound("That person is not a member of this community.", code="not_a_member")
    changed(session, user_id)


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
    if not result.rowcount:
        raise NotFound("That person is not in your contacts.", code="contact_not_found")


async def visible_user(session: AsyncSession, viewer: Principal, user_id: int) -> User:
    """A user the viewer may see: someone sharing a community (admins see everyone)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if user.id != viewer.id and not viewer.is_admin:
        other = await principal(session, user.id)
        if other is None or not share_community(viewer, other):
            raise NotFound("No such user.", code="user_not_found")
    return user


# --- blocks ---


async def list_blocks(session: AsyncSession, user_id: int) -> Sequence[User]:
    ids = select(Block.blocked_id).where(Block.blocker_id == user_id)
    return (
        await session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username))
    ).all()


async def add_block(session: AsyncSession, viewer: Principal, user_id: int) -> User:
    if user_id == viewer.id:
        raise NotAllowed("You cannot block yourself.", code="invalid_block")
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if not await session.get(Block, (viewer.id, user_id)):
        session.add(Block(blocker_id=viewer.id, blocked_id=user_id, created_at=clock.now()))
        await session.flush()
    _edges_changed(session, viewer.id, user_id)
    return user


async def remove_block(session: AsyncSession, viewer_id: int, user_id: int) -> None:
    result = await session.execute(
        delete(Block).where(Block.blocker_id == viewer_id, Block.blocked_id == user_id)
    )
    if not result.rowcount:
        raise NotFound("You have not blocked that person.", code="block_not_found")
    _edges_changed(session, viewer_id, user_id)


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


_edges: dict[int, tuple[float, frozenset[tuple[int, int]]]] = {}


def _fetch_edges(conn: Connection, user_id: int) -> frozenset[tuple[int, int]]:
    rows = conn.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(Block.blocker_id == user_id, Block.blocked_id == user_id)
        )
    )
    edges = frozenset((a, b) for a, b in rows)
    _edges[user_id] = (clock.monotonic() + _CACHE_SECONDS, edges)
    return edges


async def block_edges(session: AsyncSession, user_id: int) -> frozenset[tuple[int, int]]:
    """Every (blocker, blocked) pair that involves `user_id`, cached like principals.

    The send path reads this on every message, so it is served from memory; a block made in
    any process is announced and applies at once (see `_edges_changed`).
    """
    hit = _edges.get(user_id)
    if hit and hit[0] > clock.monotonic():
        return hit[1]
    return await session.run_sync(lambda s: _fetch_edges(s.connection(), user_id))


async def get_block_edges(db: Database, user_id: int) -> frozenset[tuple[int, int]]:
    hit = _edges.get(user_id)
    if hit and hit[0] > clock.monotonic():
        return hit[1]
    return await db.run_read(lambda conn: _fetch_edges(conn, user_id))


def forget_edges(*user_ids: int) -> None:
    for uid in user_ids:
        _edges.pop(uid, None)


def _edges_changed(session: AsyncSession, *user_ids: int) -> None:
    forget_edges(*user_ids)
    emit_control(session, "blocks.changed", {"user_ids": list(user_ids)})


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(User.id))) or 0)
