"""The live frames messaging sends: one model per frame type, `{type, data, id?}` on the wire."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from pigeon.core.events import Event
from pigeon.messaging.schemas import MessageOut, ReactionOut, ReadState


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class MessageNew(Event):
    """A message was sent; `id` is the message id (clients resume from the highest they saw)."""

    type: Literal["message.new"] = "message.new"
    data: MessageOut
    id: int


class RequestMessageOut(MessageOut):
    """A message as the person it is a message request to gets it live: `request` is true."""

    request: Literal[True]


class RequestMessageNew(Event):
    """`message.new` to someone who has not accepted the conversation yet: the same frame with
    `data.request: true`, so that their client files it under requests, not the inbox."""

    type: Literal["message.new"] = "message.new"
    data: RequestMessageOut
    id: int

    @classmethod
    def of(cls, message: MessageOut) -> RequestMessageNew:
        data = RequestMessageOut.model_construct(**dict(message), request=True)
        return cls(data=data, id=message.id)


class MessageUpdated(Event):
    type: Literal["message.updated"] = "message.updated"
    data: MessageOut
    id: int


class Deleted(_Data):
    id: int
    conversation_id: int
    deleted: Literal[True] = True


class MessageDeleted(Event):
    type: Literal["message.deleted"] = "message.deleted"
    data: Deleted
    id: int


class ReactionChange(_Data):
    """Who added or removed which emoji, and the message's reactions as they now stand."""

    message_id: int
    conversation_id: int
    user_id: int
    emoji: str
    reactions: list[ReactionOut]


class ReactionAdded(Event):
    type: Literal["reaction.added"] = "reaction.added"
    data: ReactionChange


class ReactionRemoved(Event):
    type: Literal["reaction.removed"] = "reaction.removed"
    data: ReactionChange


class ConversationChange(_Data):
    """What changed; only the fields of that kind of change are sent."""

    conversation_id: int
    # "personal": how the recipient keeps it changed (muted, pinned, archived, removed), on
    # another of their devices
    change: Literal["created", "members_added", "member_removed", "title", "deleted", "personal"]
    user_ids: list[int] | None = None  # members_added
    user_id: int | None = None  # member_removed
    title: str | None = None  # title

    @model_serializer(mode="wrap")
    def _only_what_changed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


class ConversationUpdated(Event):
    type: Literal["conversation.updated"] = "conversation.updated"
    data: ConversationChange


class ReceiptRead(Event):
    type: Literal["receipt.read"] = "receipt.read"
    data: ReadState


class UnreadData(_Data):
    total: int
    conversation_id: int
    count: int | None = None


class Unread(Event):
    """A person's badge: their total, and the conversation that changed it."""

    type: Literal["unread"] = "unread"
    data: UnreadData

    @staticmethod
    def text(total: int, conversation_id: int) -> str:
        """The frame of `Unread(data=UnreadData(total=..., conversation_id=...))`, written
        directly: the hub writes one for every recipient of every message it hands out."""
        return (
            f'{{"type":"unread","data":{{"total":{int(total)},'
            f'"conversation_id":{int(conversation_id)},"count":null}}}}'
        )


class TypingData(_Data):
    conversation_id: int
    user_id: int
    expires_at: str


class Typing(Event):
    type: Literal["typing"] = "typing"
    data: TypingData
