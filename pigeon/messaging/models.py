"""Conversations, participants, messages, their attachments and reports (messaging database).

User ids here are plain integers: the users live in the other database and are never joined.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import MessagingBase, UTCDateTime

Kind = Literal["direct", "group"]

# SQLite only gives AUTOINCREMENT-like rowids to INTEGER PRIMARY KEY columns.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Conversation(MessagingBase):
    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[Kind] = mapped_column(String(10))
    title: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_by: Mapped[int] = mapped_column(Integer)
    # "lo:hi" user ids of a direct conversation; unique, so a pair has exactly one.
    direct_key: Mapped[str | None] = mapped_column(String(40), unique=True, nullable=True)
    last_message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_conversation_updated_at", "updated_at"),
        {"sqlite_autoincrement": True},
    )


class Participant(MessagingBase):
    __tablename__ = "participant"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role: Mapped[str] = mapped_column(String(10), default="member")  # owner | admin | member
    display_name: Mapped[str] = mapped_column(String(64), default="")
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_read_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
    unread_count: Mapped[int] = mapped_column(Integer, default=0)
    # how this person keeps the conversation, for them alone
    muted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    marked_unread: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    pinned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # out of the list until something happens after this moment
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # removed for this person: out of their list until something happens after `removed_at`,
    # and out of their history up to `cleared_to_id`
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cleared_to_id: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # a message request this person has not accepted (see `request_state`): out of their inbox
    # and badge, and their reads, typing and presence kept from the others until they accept
    request_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    __table_args__ = (Index("ix_participant_user_id", "user_id"),)


class Message(MessagingBase):
    __tablename__ = "message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    client_msg_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reply_to_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    edited_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # how many files the message carries: readers look for attachments only where there are
    attachment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # likewise for reactions
    reaction_count: Mapped[int] = mapped_column(Integer, server_default="0")

    __table_args__ = (
        Index("ix_message_conversation_id_id", "conversation_id", "id"),
        Index("ix_message_created_at", "created_at"),
        # the retention purge; and, on SQLite, whose planner takes "deleted_at IS NULL" for a
        # narrow search, live messages in a range of ids (deleted_at IS NULL AND id > n). A
        # column after deleted_at would take that range away from the push fan-out's reads
        Index("ix_message_deleted_at", "deleted_at"),
        UniqueConstraint("sender_id", "client_msg_id"),
        {"sqlite_autoincrement": True},  # ids are never reused: clients resume from them
    )


class Attachment(MessagingBase):
    """A file someone uploaded: theirs alone until a message names it, then the message's.

    The bytes live in the media store under `storage_key` (and `thumbnail_key` for images),
    written before this row commits. A removed attachment keeps its row (`deleted_at`) so the
    message can say so; its files are gone.
    """

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    uploader_id: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # its place in the message
    file_name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int | None] = mapped_column(Integer, nullable=True)
    height: Mapped[int | None] = mapped_column(Integer, nullable=True)
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    thumbnail_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    thumbnail_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (
        Index("ix_attachment_message_id", "message_id"),
        Index("ix_attachment_uploader_id", "uploader_id"),
        Index("ix_attachment_created_at", "created_at"),  # the sweep of unattached uploads
        {"sqlite_autoincrement": True},
    )


class Reaction(MessagingBase):
    """One person's emoji on a message: one of each emoji per person."""

    __tablename__ = "reaction"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("message.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    emoji: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Report(MessagingBase):
    """A report on a message, keeping a copy of it until a moderator resolves the report; or,
    without a message, on a person (their profile, their behaviour)."""

    __tablename__ = "report"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reporter_id: Mapped[int] = mapped_column(Integer)
    author_id: Mapped[int] = mapped_column(Integer)
    # the community whose managers moderate it (one the reporter and the author share)
    community_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(32))
    details: Mapped[str] = mapped_column(Text, default="")
    body_copy: Mapped[str] = mapped_column(Text)
    message_created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    action: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(Integer, nullable=True)

    __table_args__ = (
        UniqueConstraint("message_id", "reporter_id"),
        Index("ix_report_status", "status"),
        Index("ix_report_community_id", "community_id"),
    )
