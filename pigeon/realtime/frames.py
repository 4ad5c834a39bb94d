"""Every frame the server sends on `/api/v1/ws`, one model each, and their union.

Messaging's events (`messaging.events`) travel through the broker; the frames here are made by
the realtime layer itself: the greeting, presence, answers to the client's own frames, the
notice that a catch-up stopped short, and the notice that messaging was switched off.
`ServerFrame` is the whole protocol, discriminated by `type`, for clients and tests to parse
with.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pigeon.core.events import Event
from pigeon.messaging.events import (
    ConversationUpdated,
    MessageDeleted,
    MessageNew,
    MessageUpdated,
    ReactionAdded,
    ReactionRemoved,
    ReceiptRead,
    Typing,
    Unread,
)


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True)


class HelloData(_Data):
    user_id: int
    unread_total: int
    unread: dict[str, int]
    latest_message_id: int
    heartbeat_seconds: float
    typing_seconds: float
    requests: int = 0  # message requests waiting (not in `unread`)


class Hello(Event):
    type: Literal["hello"] = "hello"
    data: HelloData


class PresenceData(_Data):
    user_id: int
    status: Literal["online", "offline"]
    last_seen_at: dt.datetime


class Presence(Event):
    type: Literal["presence"] = "presence"
    data: PresenceData


class Pong(Event):
    type: Literal["pong"] = "pong"
    data: dict[str, str] = Field(default_factory=dict)


class ErrorData(_Data):
    code: str
    message: str
    ref: str | int | None = None


class Error(Event):
    type: Literal["error"] = "error"
    data: ErrorData


class ResumeTruncatedData(_Data):
    last_message_id: int  # the last message the replay covered; page the rest over HTTP


class ResumeTruncated(Event):
    """A resume replayed as much as it may: more messages are missing after `last_message_id`."""

    type: Literal["resume.truncated"] = "resume.truncated"
    data: ResumeTruncatedData


class Reason(_Data):
    reason: str


class MessagingDisabled(Event):
    type: Literal["messaging.disabled"] = "messaging.disabled"
    data: Reason

    @classmethod
    def because(cls, reason: str) -> str:
        return cls(data=Reason(reason=reason)).encode().decode()


ServerFrame = Annotated[
    Hello
    | MessageNew
    | MessageUpdated
    | MessageDeleted
    | ReactionAdded
    | ReactionRemoved
    | ConversationUpdated
    | ReceiptRead
    | Typing
    | Presence
    | Unread
    | MessagingDisabled
    | Pong
    | Error
    | ResumeTruncated,
    Field(discriminator="type"),
]
server_frame: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)
