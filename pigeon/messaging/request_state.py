"""Message requests, the rule: who gets one, and what a pending one keeps quiet.

A direct conversation someone starts with a person who has never written to them is, for that
person, a *request* (`Participant.request_pending`) until they accept it or reply. Groups are
never requests: a group is started by someone allowed to start conversations, among people of
their community, and anyone may leave one.

While it is pending, for the person it was sent to:

- it is not in their inbox nor on their badge, but in their requests
  (`views.list_conversations`, `service.unread_for`, the send's totals in `send_tx`);
- their reads are not shown to the others: no `receipt.read`, and `last_read_message_id` 0
  (`changes.mark_read` through `quiet`, `views.participant_out`);
- typing is not passed on, either way (`realtime.typing` through `is_pending`);
- their presence (online, last seen) is not shown to the others, nor the others' to them
  (`catchup.companions`, `views.participant_out`).

Queries over many rows filter on the column itself; everything deciding about one
conversation asks the functions here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.messaging.models import Message, Participant


class _Member(Protocol):
    @property
    def pending(self) -> bool: ...


def pending_ids(members: Mapping[int, _Member]) -> set[int]:
    """Who, among a conversation's members, has a request in it they have not accepted."""
    return {uid for uid, member in members.items() if member.pending}


def is_pending(members: Mapping[int, _Member]) -> bool:
    """Whether the conversation is a request someone has not accepted: then nothing live passes
    between its members but the messages themselves (no typing, no reads, no presence)."""
    return any(member.pending for member in members.values())


def quiet(user_id: int, members: Mapping[int, _Member]) -> bool:
    """Whether what `user_id` does in the conversation (reading, being online) stays hidden
    from its other members: they have not accepted it."""
    member = members.get(user_id)
    return bool(member is not None and member.pending)


async def has_written_to(session: AsyncSession, writer_id: int, reader_id: int) -> bool:
    """Whether `writer_id` ever sent a message in a conversation `reader_id` is in: someone who
    has, knows them, and a conversation from them is no request."""
    theirs = select(Participant.conversation_id).where(Participant.user_id == reader_id)
    found = await session.scalar(
        select(Message.id)
        .where(Message.sender_id == writer_id, Message.conversation_id.in_(theirs))
        .limit(1)
    )
    return found is not None


def request_for(kind: str, starter_id: int, others: Mapping[int, Any], known: set[int]) -> set[int]:
    """Who a new conversation is a request for: in a direct one, the other person, unless they
    have written to the starter before (`known`); in a group, nobody."""
    if kind != "direct":
        return set()
    return {uid for uid in others if uid != starter_id and uid not in known}


async def requests_of(session: AsyncSession, user_id: int) -> set[int]:
    """The conversations that are requests to this person they have not accepted."""
    return set(
        await session.scalars(
            select(Participant.conversation_id).where(
                Participant.user_id == user_id, Participant.request_pending.is_(True)
            )
        )
    )
