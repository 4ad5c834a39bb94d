"""Which messages a person may see: the one query every reader starts from.

A message is visible to a viewer when it is in a live conversation they take part in, inside
their retention window (rule 6), and, in a group, not from someone they blocked (rule 4).
History, catch-up, search, export, reports and the unread recount all build on
`visible_messages`; none of them writes these conditions again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

from sqlalchemy import BindParameter, Select, and_, not_, select

from pigeon.accounts import blocks
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.messaging import policy
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.settings import Settings


def retention_days(settings: Settings, who: Principal) -> int:
    return settings.retention_days(who.tier, who.role)


def visible_since(settings: Settings, who: Principal, now: dt.datetime) -> dt.datetime:
    """The oldest creation time `who` may still see at `now`."""
    return policy.retention_cutoff(retention_days(settings, who), now)


async def blocked_by(rt: Runtime, viewer_id: int) -> set[int]:
    """Whom the viewer blocked (in groups, their messages are hidden from the viewer)."""
    edges = await blocks.get_block_edges(rt, viewer_id)
    return {blocked for blocker, blocked in edges if blocker == viewer_id}


Given = BindParameter[Any]  # a value to come: the statement is shaped once and run many times


def _applies(value: Collection[int] | int | Given) -> bool:
    """A condition is there to apply: a value that is set, or a parameter standing for one."""
    return isinstance(value, BindParameter) or bool(value)


def visible_messages(
    viewer_id: int,
    *,
    since: dt.datetime | Given,
    hidden: Collection[int] | Given,
    conversation: tuple[int | Given, str] | None = None,
    cleared_to_id: int | Given = 0,
    include_deleted: bool = True,
    upto: int | Given | None = None,
) -> Select[tuple[Message]]:
    """The messages `viewer_id` may see, as a query to narrow, order and page.

    `hidden` is whom the viewer blocked. With `conversation` (id, kind), whose membership the
    caller has already checked, the query stays on that conversation's index (and leaves out
    what the viewer removed for themselves, up to `cleared_to_id`); without it, it joins the
    viewer's memberships, which carry that mark. `include_deleted` keeps tombstones (history,
    catch-up show them in place); search, export and counts leave them out. `upto` is the
    message stream's position (`core.stream`): history and catch-up show nothing above it, so
    that a client never sees an id while a lower one may still commit.

    A value may be a bound parameter (`Given`), for a statement a hot path shapes once and
    runs with its values (a history page): an empty `hidden` or a `cleared_to_id` of 0 leaves
    its condition out, a parameter keeps it.
    """
    stmt = select(Message).where(Message.created_at >= since)
    if upto is not None:
        stmt = stmt.where(Message.id <= upto)
    if conversation is not None:
        conversation_id, kind = conversation
        stmt = stmt.where(Message.conversation_id == conversation_id)
        if _applies(cleared_to_id):
            stmt = stmt.where(Message.id > cleared_to_id)
        if _applies(hidden) and kind == "group":
            stmt = stmt.where(Message.sender_id.not_in(hidden))
    else:
        stmt = (
            stmt.join(
                Participant,
                and_(
                    Participant.conversation_id == Message.conversation_id,
                    Participant.user_id == viewer_id,
                    Message.id > Participant.cleared_to_id,
                ),
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(Conversation.deleted_at.is_(None))
        )
        if _applies(hidden):
            stmt = stmt.where(
                not_(and_(Conversation.kind == "group", Message.sender_id.in_(hidden)))
            )
    if not include_deleted:
        stmt = stmt.where(Message.deleted_at.is_(None))
    return stmt
