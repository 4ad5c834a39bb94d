"""Accounts: users, their profiles and standing (tier, role, active), and who may see whom.

Communities live in `communities`, contacts and blocks in `blocks`, and who people are as
other domains read them (`Principal`, cached) in `directory`; other domains use these
services, never the tables.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import communities, directory
from pigeon.accounts.models import Block, Contact, Membership, User
from pigeon.accounts.passwords import check_new_password
from pigeon.core.audit import audit_user_changes
from pigeon.core.errors import Conflict, NotAllowed, NotFound
from pigeon.core.events import BlocksChanged
from pigeon.core.principal import Principal
from pigeon.core.ratelimit import Limiter
from pigeon.core.security import Passwords
from pigeon.core.text import contains
from pigeon.core.uow import UnitOfWork
from pigeon.settings import Settings

# --- users ---

# how a deleted account is named wherever a name is shown for it
DELETED_NAME = "Deleted member"
# what a deleted account's username and email become: "~" is in neither a username nor an
# email anyone can register, so the tombstones never collide with a real one
_TOMBSTONE = "~deleted-{id}"


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


async def find_by_email(session: AsyncSession, email: str) -> User | None:
    """The live account using this address (never a deleted one: theirs are tombstones)."""
    return await session.scalar(select(User).where(User.email == normalize_email(email)))


async def mark_email_verified(uow: UnitOfWork, user: User) -> bool:
    """Record that the person read mail sent to their address; False if it was already known."""
    if user.email_verified_at is not None:
        return False
    user.email_verified_at = uow.clock.now()
    await uow.app.flush()
    directory.changed(uow, user.id)
    return True


async def set_email(uow: UnitOfWork, user: User, email: str) -> str:
    """Give the account a new address, verified (the person just followed a link sent to
    it); Conflict `email_taken` if another account has it by now. Returns the old address."""
    email, old = normalize_email(email), user.email
    session = uow.app
    taken = await session.scalar(select(User.id).where(User.email == email, User.id != user.id))
    if taken is not None:
        raise Conflict("That email is already registered.", code="email_taken")
    user.email = email
    user.email_verified_at = uow.clock.now()
    try:
        await session.flush()
    except IntegrityError as exc:  # another account took it at the same moment
        raise Conflict("That email is already registered.", code="email_taken") from exc
    directory.changed(uow, user.id)
    return old


async def users_by_ids(session: AsyncSession, user_ids: Iterable[int]) -> dict[int, User]:
    ids = set(user_ids)
    if not ids:
        return {}
    users = await session.scalars(_USERS_BY_ID, {"ids": list(ids)})
    return {u.id: u for u in users}


_USERS_BY_ID = select(User).where(User.id.in_(bindparam("ids", expanding=True)))


async def create_user(
    uow: UnitOfWork,
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
    email_verified: bool = False,
) -> User:
    """A new account (in the default community unless told otherwise).

    `email_verified` is for accounts whose address someone vouches for (an admin made at the
    console, the demo's people); a sign-up proves its address by following the emailed link.

    The password is checked against the rules and hashed before the first statement, so that
    no transaction (on SQLite: the write lock) waits on the hash: call this before the unit of
    work has written anything.
    """
    email, username = normalize_email(email), normalize_username(username)
    check_new_password(password, username=username, email=email)
    password_hash = await passwords.hash(password)
    session, now = uow.app, uow.clock.now()
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
        created_at=now,
        email_verified_at=now if email_verified else None,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent registration won the race
        raise Conflict(
            "That email or username is already registered.", code="username_taken"
        ) from exc
    if join_default:
        community = await communities.default_community(uow, settings)
        session.add(Membership(community_id=community.id, user_id=user.id, joined_at=now))
        await session.flush()
    return user


async def authenticate(passwords: Passwords, user: User | None, password: str) -> User | None:
    """`user` if `password` is theirs, else None (also when there is no such user, after the
    same work). Read the user first and end that read: the check takes a while and should hold
    neither a transaction nor a pooled connection."""
    ok = await passwords.verify(user.password_hash if user else None, password)
    return user if ok and user else None


async def set_password(
    session: AsyncSession,
    passwords: Passwords,
    user: User,
    password: str,
    *,
    field: str = "password",
) -> None:
    """Check a new password against the rules and store its hash. Like `create_user`, it
    hashes before its statement: call it before the unit of work has written anything."""
    check_new_password(password, username=user.username, email=user.email, field=field)
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
    directory.changed(uow, user.id)
    return user


async def touch_last_seen(session: AsyncSession, user_id: int, now: dt.datetime) -> None:
    user = await session.get(User, user_id)
    if user is not None:
        user.last_seen_at = now
        await session.flush()


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
    """People with an account, by id; deleted accounts (tombstones) are nobody's business."""
    stmt = (
        select(User).where(User.deleted_at.is_(None)).order_by(User.id).limit(limit).offset(offset)
    )
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
    demoted = (role is not None and role != "admin") or is_active is False
    if demoted and _is_active_admin(user):
        await _keep_an_admin(uow, user)
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
    await uow.app.flush()
    directory.changed(uow, user.id)
    return changes


def _is_active_admin(user: User) -> bool:
    return user.role == "admin" and user.is_active


async def _keep_an_admin(uow: UnitOfWork, user: User) -> None:
    """Refuse a change that would take `user`, an active admin, out of the server's last active
    admin. Call it before the change is written. The active admins are read (and on PostgreSQL
    locked) in id order, in the change's transaction: two admins demoting each other at once
    take their locks in one order, so the second waits for the first, then sees its change and
    is refused, where locking after writing would deadlock them."""
    with uow.app.no_autoflush:
        admins = await uow.app.scalars(
            select(User.id)
            .where(User.role == "admin", User.is_active.is_(True))
            .order_by(User.id)
            .with_for_update()
        )
        if all(admin_id == user.id for admin_id in admins):
            raise Conflict(
                "This is the last admin; make someone else an admin first.", code="last_admin"
            )


async def update_user(
    uow: UnitOfWork,
    actor: Principal,
    user_id: int,
    *,
    limiter: Limiter,
    display_name: str | None = None,
    bio: str | None = None,
    avatar_url: str | None = None,
    tier: str | None = None,
    role: str | None = None,
    is_active: bool | None = None,
    show_last_seen: bool | None = None,
    read_receipts: bool | None = None,
) -> tuple[User, dict[str, tuple[object, object]]]:
    """Change a profile, and (admins only) a tier, role or whether the account is active.

    The one place for these rules, whichever page, route or command asks: people change their
    own profile, admins anyone's; only admins change standing; nobody demotes or disables
    themselves; the last admin stays an admin. Standing changes are audited. One's own saves
    share the budget of one's other settings (each is a write every process hears of). Returns
    the user and {field: (before, after)} of the standing that changed.
    """
    if user_id != actor.id and not actor.is_admin:
        raise NotAllowed("You can only change your own profile.", code="not_your_profile")
    standing = tier is not None or role is not None or is_active is not None
    if standing and not actor.is_admin:
        raise NotAllowed("Only admins change tiers and roles.", code="admin_only")
    if user_id == actor.id and (is_active is False or (role is not None and role != "admin")):
        raise NotAllowed("You cannot demote or disable yourself.", code="cannot_change_self")
    private = show_last_seen is not None or read_receipts is not None
    if private and user_id != actor.id:
        raise NotAllowed("Only you choose what others see of you.", code="not_your_profile")
    if user_id == actor.id:
        await limiter.check_settings(actor.id)
    target = await get_user(uow.app, user_id)
    if target.deleted_at is not None:
        raise NotFound("No such user.", code="user_not_found")
    # standing first: it takes the admins' locks before anything of the target is written
    changes = await set_tier_role(uow, target, tier=tier, role=role, is_active=is_active)
    await update_profile(uow, target, display_name=display_name, bio=bio, avatar_url=avatar_url)
    if show_last_seen is not None:
        target.show_last_seen = show_last_seen
    if read_receipts is not None:
        target.read_receipts = read_receipts
    if private:
        await uow.app.flush()  # `update_profile` announced the change: the cache forgets them
    audit_user_changes(
        uow,
        changes,
        actor_id=actor.id,
        actor_label=actor.username,
        user_id=target.id,
        username=target.username,
    )
    return target, changes


async def anonymise(uow: UnitOfWork, user: User) -> None:
    """Delete an account in the primary database: the row stays (messages and reports point at
    it) but nothing of the person does. Their name, profile, email and username go (the last
    two become tombstones, so both can be registered again), the password can no longer match,
    the account is inactive, and their memberships, contacts and blocks are removed. Refused
    for the last active admin. Sign-ins are auth's to end."""
    if user.deleted_at is not None:
        raise NotFound("No such user.", code="user_not_found")
    if _is_active_admin(user):
        await _keep_an_admin(uow, user)
    user.is_active = False
    session = uow.app
    tombstone = _TOMBSTONE.format(id=user.id)
    user.email = user.username = tombstone
    user.password_hash = "!"  # not a hash: nothing verifies against it
    user.display_name, user.bio, user.avatar_url = DELETED_NAME, "", None
    user.role, user.suspended_until, user.last_seen_at = "member", None, None
    user.show_last_seen = user.read_receipts = False
    user.deleted_at = uow.clock.now()
    edges = await session.execute(
        select(Block.blocker_id, Block.blocked_id).where(
            or_(Block.blocker_id == user.id, Block.blocked_id == user.id)
        )
    )
    blocked_with = {uid for row in edges for uid in row}
    await session.execute(delete(Membership).where(Membership.user_id == user.id))
    await session.execute(
        delete(Contact).where(or_(Contact.user_id == user.id, Contact.contact_id == user.id))
    )
    await session.execute(
        delete(Block).where(or_(Block.blocker_id == user.id, Block.blocked_id == user.id))
    )
    await session.flush()
    directory.changed(uow, user.id)
    if blocked_with:
        uow.control(BlocksChanged(user_ids=sorted(blocked_with | {user.id})))


# --- communities ---


# --- contacts ---


async def visible_user(session: AsyncSession, viewer: Principal, user_id: int) -> User:
    """A user the viewer may see: someone sharing a community (admins see everyone)."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", code="user_not_found")
    if user.id != viewer.id and not viewer.is_admin:
        other = (await directory.load_principals(session, [user.id])).get(user.id)
        if other is None or not share_community(viewer, other):
            raise NotFound("No such user.", code="user_not_found")
    return user


# --- blocks ---


async def count_users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count(User.id))) or 0)
