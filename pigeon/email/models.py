"""The outbox (primary database): one row per email, from queued to sent or given up.

A row is pending while neither `sent_at` nor `dead_at` is set; it is due once
`next_attempt_at` has passed. The worker reads due rows through the index on those three.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import AppBase, UTCDateTime


class OutboxEmail(AppBase):
    __tablename__ = "outbox_email"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dead_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # extra headers, a JSON object of name -> value (e.g. List-Unsubscribe); None for none
    headers: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_outbox_email_due", "sent_at", "dead_at", "next_attempt_at"),)
