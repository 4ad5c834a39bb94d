"""Web Push (primary database): each device's subscription, each person's on/off choice, and
how far the sender has read the messages."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import AppBase, UTCDateTime


class PushSubscription(AppBase):
    """One browser on one device, as its push service identifies it. The endpoint is unique:
    a device belongs to whoever subscribed it last (the person signed in on it now)."""

    __tablename__ = "push_subscription"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(100))  # the browser's public key, base64url
    auth: Mapped[str] = mapped_column(String(32))  # its authentication secret, base64url
    user_agent: Mapped[str] = mapped_column(String(100), default="")  # "Firefox on Android"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_success_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_push_subscription_user_id", "user_id"),)


class PushPreference(AppBase):
    """A person's push switch; no row means on (the default)."""

    __tablename__ = "push_preference"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class PushCursor(AppBase):
    """The id of the last message the sender has dealt with (one row, `name` "messages")."""

    __tablename__ = "push_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    message_id: Mapped[int] = mapped_column(BigInteger)
