"""Contacts and blocks: who a person keeps close, and who they keep away (rule 4).

Block edges are cached on the runtime (the send path reads them on every message) and every
change is announced, so a block made in any process applies at once everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy import bindparam, delete, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from pigeon.accounts.models import Block, Contact, User
from pigeon.accounts.service import visible_user
from pigeon.core.db import rowcount
from pigeon.core.errors import NotAllowed, NotFound
from pigeon.core.events import BlocksChanged
from pigeon.core.people import Edges
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.uow import UnitOfWork


async def list_contacts(session: AsyncSession, user_id: int) -> Sequence[User]:
    ids = select(Contact.contact_id).where(Contact.user_id == user_id)
    return (
        await session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username))
    ).all()


async def add_contact(uow: UnitOfWork, viewer: Principal, contact_id: int) -> User:
    session = uow.app
    if contact_id == viewer.id:
        raise NotAllowed("You cannot add yourself as a contact.", code="invalid_contact")
    other = await visible_user(session, viewer, contact_id)
    if await blocks_among(session, viewer.id, [contact_id]):
        raise NotAllowed("You cannot add this person as a contact.", code="blocked")
    if not await session.get(Contact, (viewer.id, contact_id)):
        session.add(Contact(user_id=viewer.id, contact_id=contact_id, created_at=uow.clock.now()))
        await session.flush()
    return other


async def remove_contact(session: AsyncSession, user_id: int, contact_id: int) -> None:
    result = await session.execute(
        delete(Contact).where(Contact.user_id == user_id, Contact.contact_id == contact_id)
    )
    if not rowcount(result):
        raise NotFound("That person is not in your contacts.", code="contact_not_found")


async def list_blocks(session: AsyncSession, user_id: int) -> Sequence[User]:
    ids = select(Block.blocked_id).where(Block.blocker_id == user_id)
    return (
        await session.scalars(select(User).where(User.id.in_(ids)).order_by(User.username))
    ).all()


async def add_block(uow: UnitOfWork, viewer: Principal, user_id: int) -> User:
    """Block someone the viewer can see (anyone else is answered as if they did not exist)."""
    session = uow.app
    if user_id == viewer.id:
        raise NotAllowed("You cannot block yourself.", code="invalid_block")
    user = await visible_user(session, viewer, user_id)
    if not await session.get(Block, (viewer.id, user_id)):
        session.add(Block(blocker_id=viewer.id, blocked_id=user_id, created_at=uow.clock.now()))
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


# built once, as `directory`'s lookups are: the renewal reads edges all day long
_IDS: BindParameter[int] = bindparam("ids", expanding=True)
_EDGES = select(Block.blocker_id, Block.blocked_id).where(
    or_(Block.blocker_id.in_(_IDS), Block.blocked_id.in_(_IDS))
)


def _fetch_edges(conn: Connection, user_ids: set[int]) -> dict[int, Edges]:
    rows = conn.execute(_EDGES, {"ids": list(user_ids)})
    found: dict[int, set[tuple[int, int]]] = {uid: set() for uid in user_ids}
    for a, b in rows:
        for uid in {a, b} & user_ids:
            found[uid].add((a, b))
    return {uid: frozenset(edges) for uid, edges in found.items()}


async def get_block_edges(rt: Runtime, user_id: int) -> Edges:
    """Every (blocker, blocked) pair that involves `user_id`, cached on the runtime: the send
    path reads this on every message, and a block made anywhere applies at once."""
    hit = rt.people.edges.get(user_id)
    if hit is not None:
        return hit
    return (await read_edges(rt, {user_id}))[user_id]


async def read_edges(rt: Runtime, user_ids: set[int]) -> Mapping[int, Edges]:
    """The edges of these users read now, and believed from now on (`core.people.Beliefs.read`)."""
    return await rt.people.edges.read(rt.dbs.app, _fetch_edges, user_ids)


def _edges_changed(uow: UnitOfWork, *user_ids: int) -> None:
    uow.control(BlocksChanged(user_ids=list(user_ids)))
