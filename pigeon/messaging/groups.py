"""Group conversations: members in and out, title, deleting the group.

Each change reads the group's members inside its own transaction, so two people changing the
same group at once each see the other's change, never a stale roster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from sqlalchemy import delete, select, update

from pigeon.accounts import directory
from pigeon.core.errors import Invalid, NotAllowed, NotFound
from pigeon.core.principal import Principal
from pigeon.messaging import policy
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import ConversationChange, ConversationUpdated
from pigeon.messaging.models import Conversation, Participant
from pigeon.messaging.service import (
    Convo,
    access_conversation,
    access_for_change,
    add_participants,
    check_people,
    require_writable,
    touch,
)


def _group(convo: Convo) -> Convo:
    if convo.kind != "group":
        raise NotFound("No such group.", code="conversation_not_found")
    return convo


async def access_group(ctx: Ctx, conversation_id: int) -> Convo:
    return _group(await access_conversation(ctx, conversation_id))


async def _group_for_change(ctx: Ctx, conversation_id: int) -> Convo:
    return _group(await access_for_change(ctx, conversation_id))


def _changed(ctx: Ctx, convo: Convo, change: ConversationChange, extra: Sequence[int] = ()) -> None:
    ctx.uow.emit(ConversationUpdated(data=change), [*convo.members, *extra])


async def add_members(ctx: Ctx, conversation_id: int, user_ids: Sequence[int]) -> list[int]:
    """Owners and group admins add people; returns who was added (not those already in).
    Adding someone starts a conversation with them, so it needs the right to start (rule 2)."""
    await require_writable(ctx)
    convo = await _group_for_change(ctx, conversation_id)
    policy.check_can_manage_group(convo.role_of(ctx.viewer.id))
    policy.check_can_start(ctx.viewer)
    new_ids = set(user_ids) - set(convo.members)
    if not new_ids:
        return []
    policy.check_group_size(len(convo.members) + len(new_ids), ctx.settings.max_group_size)
    people = await check_people(ctx, new_ids)
    await ctx.rt.limiter.hit("start", ctx.viewer.id)  # like starting a group with them
    now = ctx.rt.clock.now()
    added = await add_participants(ctx, conversation_id, people, owner_id=None, now=now)
    if added:
        await touch(ctx, conversation_id, now)
        change = ConversationChange(
            conversation_id=conversation_id, change="members_added", user_ids=added
        )
        _changed(ctx, convo, change, added)
    return added


async def remove_member(ctx: Ctx, conversation_id: int, user_id: int) -> None:
    """Owners and group admins remove others; anyone may leave."""
    await require_writable(ctx)
    convo = await _group_for_change(ctx, conversation_id)
    policy.check_can_remove(
        ctx.viewer.id, convo.role_of(ctx.viewer.id), user_id, convo.role_of(user_id)
    )
    if user_id not in convo.members:
        raise NotFound("That person is not in this group.", code="not_a_member")
    await take_out(ctx, convo, user_id)


async def take_out(ctx: Ctx, convo: Convo, user_id: int) -> None:
    """Take a member out of a group (read in the unit of work), whoever asked: the owner's
    role passes to an heir, and the members (the one leaving too) are told."""
    conversation_id = convo.id
    session = ctx.uow.messaging
    await session.execute(
        delete(Participant).where(
            Participant.conversation_id == conversation_id, Participant.user_id == user_id
        )
    )
    if convo.role_of(user_id) == "owner":
        heir = await _heir(ctx, conversation_id)
        if heir is not None:
            await session.execute(
                update(Participant)
                .where(Participant.conversation_id == conversation_id, Participant.user_id == heir)
                .values(role="owner")
            )
    change = ConversationChange(
        conversation_id=conversation_id, change="member_removed", user_id=user_id
    )
    _changed(ctx, convo, change)


async def _heir(ctx: Ctx, conversation_id: int) -> int | None:
    """Who leads once the owner has gone: the longest-standing member who may start
    conversations (owners add people, and adding people is starting a conversation with them).
    None when nobody may: the group then has no owner until staff act."""
    remaining = (
        await ctx.uow.messaging.scalars(
            select(Participant.user_id)
            .where(Participant.conversation_id == conversation_id)
            .order_by(Participant.joined_at, Participant.user_id)
        )
    ).all()
    people = await directory.principals(ctx.rt, remaining)
    return next((uid for uid in remaining if uid in people and policy.can_start(people[uid])), None)


async def rename(ctx: Ctx, conversation_id: int, title: str | None) -> None:
    await require_writable(ctx)
    convo = await _group_for_change(ctx, conversation_id)
    policy.check_can_manage_group(convo.role_of(ctx.viewer.id))
    clean = policy.clean_title(title, ctx.settings.max_title_chars)
    if clean is None:
        raise Invalid("A group needs a title.", fields={"title": "must not be empty"})
    await ctx.uow.messaging.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(title=clean, updated_at=ctx.rt.clock.now())
    )
    _changed(
        ctx, convo, ConversationChange(conversation_id=conversation_id, change="title", title=clean)
    )


async def delete_group(ctx: Ctx, conversation_id: int) -> None:
    """The owner deletes the group: it leaves everyone's list; retention purges its messages."""
    await require_writable(ctx)
    convo = await _group_for_change(ctx, conversation_id)
    policy.check_can_delete_group(convo.role_of(ctx.viewer.id))
    await ctx.uow.messaging.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(deleted_at=ctx.rt.clock.now())
    )
    _changed(ctx, convo, ConversationChange(conversation_id=conversation_id, change="deleted"))


@dataclasses.dataclass(frozen=True, slots=True)
class Powers:
    """What the viewer may do to a group right now, by the checks its changes run: pages show
    only the controls that would work (the changes still check for themselves)."""

    rename: bool
    add: bool
    add_refusal: str | None  # why a manager of the group may not add people
    removable: frozenset[int]
    delete: bool


def _refusal(check: Callable[..., None], *facts: object) -> str | None:
    try:
        check(*facts)
    except NotAllowed as refused:
        return refused.message
    return None


def powers(viewer: Principal, convo: Convo) -> Powers:
    role = convo.role_of(viewer.id)
    manage = _refusal(policy.check_can_manage_group, role) is None
    cannot_start = _refusal(policy.check_can_start, viewer) if manage else None
    removable = frozenset(
        uid
        for uid, member in convo.members.items()
        if uid != viewer.id
        and _refusal(policy.check_can_remove, viewer.id, role, uid, member.role) is None
    )
    return Powers(
        rename=manage,
        add=manage and cannot_start is None,
        add_refusal=cannot_start,
        removable=removable,
        delete=_refusal(policy.check_can_delete_group, role) is None,
    )
