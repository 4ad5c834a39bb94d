from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from pigeon.core.schemas import In, Paragraph
from pigeon.core.types import RowId, UserId

ClientMsgId = str


MAX_ATTACHMENTS = 10


class AttachmentOut(BaseModel):
    """A file as clients see it. `removed` ones keep their place in the message, without
    their file (the uploader or a moderator removed it)."""

    id: int
    file_name: str
    content_type: str
    size: int
    width: int | None = None
    height: int | None = None
    url: str | None = Field(description="the file itself; null once removed")
    thumbnail_url: str | None = Field(default=None, description="images only: a small WebP")
    removed: bool = False


REACTION_PALETTE = ("👍", "❤️", "😂", "😮", "😢", "🙏")


class ReactionOut(BaseModel):
    """One emoji on a message: how many reacted with it, and who."""

    emoji: str
    count: int
    user_ids: list[int]


class ReactionIn(In):
    emoji: str = Field(
        max_length=64,
        description=f"one emoji: the palette {' '.join(REACTION_PALETTE)}, or any other single one",
    )


QUOTE_CHARS = 120


class QuoteOut(BaseModel):
    """What a reply shows of the message it answers: its author and first line, as far as the
    reader may still see it (`available` is false when it is outside their history: older than
    their window, removed for themselves, or from someone they blocked)."""

    id: int
    available: bool
    sender_id: int | None = None
    excerpt: str = Field(default="", description=f"the first line, at most {QUOTE_CHARS} chars")
    attachments: int = Field(default=0, description="how many files it carries")
    deleted: bool = False


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    sender_id: int
    body: str
    created_at: dt.datetime
    edited_at: dt.datetime | None
    deleted: bool
    reply_to_id: int | None
    reply_to: QuoteOut | None = Field(
        default=None,
        description="in history pages: the message replied to, as the reader may see it",
    )
    attachments: list[AttachmentOut]
    reactions: list[ReactionOut]
    client_msg_id: str | None


class ParticipantOut(BaseModel):
    id: int
    username: str | None
    display_name: str
    avatar_url: str | None
    role: str
    last_read_message_id: int
    last_seen_at: dt.datetime | None


class ConversationOut(BaseModel):
    id: int
    kind: Literal["direct", "group"]
    title: str | None
    created_by: int
    participants: list[ParticipantOut]
    last_message: MessageOut | None
    unread_count: int
    last_read_message_id: int
    created_at: dt.datetime
    updated_at: dt.datetime
    retention_days: int = Field(description="messages older than this are removed for you")
    muted: bool = Field(default=False, description="yours: no badge (the count stays)")
    pinned: bool = Field(default=False, description="yours: on top of the list (at most 3)")
    archived: bool = Field(
        default=False, description="yours: out of the list until something new happens"
    )
    marked_unread: bool = Field(default=False, description="yours: marked unread by hand")
    request: bool = Field(
        default=False,
        description="yours: a message request you have not accepted (accept, decline or reply)",
    )


class ConversationCreate(In):
    participant_ids: list[UserId] = Field(min_length=1, max_length=1000)
    kind: Literal["direct", "group"] = "direct"
    title: str | None = Field(default=None, max_length=1000)


class ConversationUpdate(In):
    """A group's title (for everyone), and how you keep the conversation (for you alone)."""

    title: str | None = Field(default=None, max_length=1000)
    muted: StrictBool | None = None
    pinned: StrictBool | None = None
    archived: StrictBool | None = None
    unread: StrictBool | None = Field(
        default=None, description="true marks it unread; false marks it read"
    )


_BODY = Field(max_length=100_000, description="1 to 4,000 characters after trimming")
_OPTIONAL_BODY = Field(
    default="",
    max_length=100_000,
    description="up to 4,000 characters after trimming; may be empty when files are attached",
)
_CLIENT_ID = Field(
    default=None,
    min_length=1,
    max_length=64,
    pattern=r"^[\x21-\x7e]+$",
    description="your id for this send; a retry with the same id returns the original",
)


class MessageCreate(In):
    body: str = _OPTIONAL_BODY
    client_msg_id: str | None = _CLIENT_ID
    reply_to_id: RowId | None = None
    attachment_ids: list[RowId] = Field(
        default_factory=list,
        max_length=MAX_ATTACHMENTS,
        description="your uploads (POST /media/upload) to attach, in order; a message needs "
        "text or at least one attachment",
    )


class MessageEdit(In):
    body: str = _BODY


class ReadIn(In):
    message_id: RowId


class DirectSend(In):
    recipient_id: UserId
    body: str = _BODY
    client_msg_id: str | None = _CLIENT_ID


class GroupCreate(In):
    title: str = Field(max_length=1000)
    member_ids: list[UserId] = Field(min_length=1, max_length=1000)


class ReadState(BaseModel):
    conversation_id: int
    user_id: int
    message_id: int
    unread_count: int


class UnreadOut(BaseModel):
    total: int = Field(description="unread messages in the inbox, without muted conversations")
    conversations: dict[str, int] = Field(description="inbox conversations with unread ones")
    requests: int = Field(default=0, description="message requests waiting for an answer")


Reason = Literal[
    "spam", "harassment", "hate", "violence", "sexual", "self_harm", "impersonation", "other"
]


class ReportIn(In):
    reason: Reason
    details: Paragraph(1000, "details") = ""  # type: ignore[valid-type]


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int | None = Field(description="null for a report on a person")
    conversation_id: int | None
    reason: str
    details: str
    status: str
    action: str | None
    created_at: dt.datetime
    resolved_at: dt.datetime | None


class DeclineIn(In):
    """How to decline a message request: just decline, or block or report the sender too."""

    block: StrictBool = Field(default=False, description="block the sender as well")
    report: ReportIn | None = Field(
        default=None, description="report the sender to the moderators as well"
    )
