"""What an email digest may count: unread messages, per conversation and sender, never their text.

The rule, in one place for the digest job (and the push notifications that will follow it):

| counted                                   | not counted                                  |
| ----------------------------------------- | -------------------------------------------- |
| a message after the reader's read mark    | one they have read, or cleared from view     |
| in a conversation they keep open          | a muted one, a message request, a deleted    |
|                                           | conversation                                 |
| from someone else, not deleted            | their own; a deleted one; from someone they  |
|                                           | blocked (they do not see those)              |
| newer than what the last digest covered   | anything a digest already counted            |

Only ids, counts, conversation kinds and titles leave this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.messaging.models import Conversation, Message, Participant

MAX_CONVERSATIONS = 20  # in one digest; the rest are counted as "and N more"


@dataclasses.dataclass
class Unread:
    """One conversation's new unread messages for one reader."""

    conversation_id: int
    kind: str
    title: str | None
    count: int = 0
    newest_id: int = 0
    senders: dict[int, int] = dataclasses.field(default_factory=dict)  # sender id -> count


def _notifying() -> list[ColumnElement[bool]]:
    """The reader's participant rows that may notify: unread, not muted, not a request."""
    return [
        Participant.unread_count > 0,
        Participant.muted.is_(False),
        Participant.request_pending.is_(False),
        Conversation.deleted_at.is_(None),
    ]


async def waiting_readers(session: AsyncSession) -> list[int]:
    """Everyone with something unread that may notify: the digest job's first, cheap cut."""
    rows = await session.scalars(
        select(Participant.user_id)
        .join(Conversation, Conversation.id == Participant.conversation_id)
        .where(*_notifying())
        .distinct()
    )
    return sorted(rows)


async def unread_after(
    session: AsyncSession, user_id: int, *, after_id: int, hidden_senders: Iterable[int] = ()
) -> list[Unread]:
    """This reader's unread messages newer than `after_id`, per conversation (the newest
    conversation first), without the senders they blocked."""
    hidden = set(hidden_senders)
    stmt = (
        select(
            Message.conversation_id,
            Conversation.kind,
            Conversation.title,
            Message.sender_id,
            func.count(Message.id),
            func.max(Message.id),
        )
        .join(Participant, Participant.conversation_id == Message.conversation_id)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Participant.user_id == user_id, *_notifying())
        .where(
            Message.id > Participant.last_read_message_id,
            Message.id > Participant.cleared_to_id,
            Message.id > after_id,
            Message.sender_id != user_id,
            Message.deleted_at.is_(None),
        )
        .group_by(Message.conversation_id, Conversation.kind, Conversation.title, Message.sender_id)
    )
    if hidden:
        stmt = stmt.where(Message.sender_id.not_in(hidden))
    found: dict[int, Unread] = {}
    for conv_id, kind, title, sender_id, count, newest in await session.execute(stmt):
        item = found.setdefault(conv_id, Unread(conv_id, kind, title))
        item.count += int(count)
        item.newest_id = max(item.newest_id, int(newest))
        item.senders[sender_id] = item.senders.get(sender_id, 0) + int(count)
    return sorted(found.values(), key=lambda u: u.newest_id, reverse=True)
