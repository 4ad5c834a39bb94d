"""Group conversations: members in and out, title, deleting the group."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select, update

from pigeon.core.clock import clock
from pigeon.core.errors import Invalid, NotAllowed, NotFound
from pigeon.core.events import emit
from pigeon.messaging import policy
from pigeon.messaging.service import (
    C,
    Convo,
    Ctx,
    P,
    _add_participants,
    _check_people,
    access_conversation,
    require_enabled,
)


async def access_group(ctx: Ctx, conversation_id: int) -> Convo:
    convo = await access_conversation(ctx, conversation_id)
    if convo.kind != "group":
        raise NotFound("No such group.", code="conversation_not_found")
    return convo


def _role(convo: Convo, user_id: int) -> str | None:
    member = convo.members.get(user_id)
    return member.role if member else None


async def add_members(ctx: Ctx, conversation_id: int, user_ids: Sequence[int]) -> list[int]:
    await require_enabled(ctx)
    convo = await access_group(ctx, conversation_id)
    policy.check_can_manage_group(_role(convo, ctx.viewer.id))
    new_ids = set(user_ids) - set(convo.members)
    if not new_ids:
        return []
    policy.check_group_size(len(convo.members) + len(new_ids), ctx.settings.max_group_size)
    people = await _check_people(ctx, new_ids)
    now = clock.now()
    async with ctx.dbs.messaging.write() as session:
        await _add_participants(session, conversation_id, people, owner_id=None, now=now)
        await session.execute(update(C).where(C.c.id == conversation_id).values(updated_at=now))
        emit(
            session,
            "conversation.updated",
            {
                "conversation_id": conversation_id,
                "change": "members_added",
                "user_ids": sorted(new_ids),
            },
            user_ids=[*convo.members, *new_ids],
        )
    return sorted(new_ids)


async def remove_member(ctx: Ctx, conversation_id: int, user_id: int) -> None:
    """Owners and group admins remove others; anyone may leave."""
    await require_enabled(ctx)
    convo = await access_group(ctx, conversation_id)
    if user_id != ctx.viewer.id:
        policy.check_can_manage_group(_role(convo, ctx.viewer.id))
        if _role(convo, user_id) == "owner":
            raise NotAllowed("The group's owner cannot be removed.", code="not_group_admin")
    if user_id not in convo.members:
        raise NotFound("That person is not in this group.", code="not_a_member")
    async with ctx.dbs.messaging.write() as session:
        await session.execute(
            delete(P).where(P.c.conversation_id == conversation_id, P.c.user_id == user_id)
        )
        if _role(convo, user_id) == "owner":  # the owner left: the longest-standing member leads
            heir = await session.scalar(
                select(P.c.user_id)
                .where(P.c.conversation_id == conversation_id)
                .order_by(P.c.joined_at, P.c.user_id)
                .limit(1)
            )
            if heir is not None:
                await session.execute(
                    update(P)
                    .where(P.c.conversation_id == conversation_id, P.c.user_id == heir)
                    .values(role="owner")
                )
        emit(
            session,
            "conversation.updated",
            {"conversation_id": conversation_id, "change": "member_removed", "user_id": user_id},
            user_ids=list(convo.members),
        )


async def rename(ctx: Ctx, conversation_id: int, title: str | None) -> None:
    await require_enabled(ctx)
    convo = await access_group(ctx, conversation_id)
    policy.check_can_manage_group(_role(convo, ctx.viewer.id))
    clean = policy.clean_title(title, ctx.settings.max_title_chars)
    if clean is None:
        raise Invalid("A group needs a title.", fields={"title": "must not be empty"})
    async with ctx.dbs.messaging.write() as session:
        await session.execute(
            update(C).where(C.c.id == conversation_id).values(title=clean, updated_at=clock.now())
        )
        emit(
            session,
            "conversation.updated",
            {"conversation_id": conversation_id, "change": "title", "title": clean},
            user_ids=list(convo.members),
        )


async def delete_group(ctx: Ctx, conversation_id: int) -> None:
    """The owner deletes the group: it leaves everyone's list; retention purges its messages."""
    await require_enabled(ctx)
    convo = await access_group(ctx, conversation_id)
    if _role(convo, ctx.viewer.id) != "owner":
        raise NotAllowed("Only the group's owner can delete it.", code="not_group_owner")
    async with ctx.dbs.messaging.write() as session:
        await session.execute(
            update(C).where(C.c.id == conversation_id).values(deleted_at=clock.now())
        )
        emit(
            session,
            "conversation.updated",
            {"conversation_id": conversation_id, "change": "deleted"},
            user_ids=list(convo.members),
        )
