"""What the digest job remembers per person (primary database).

`sent_at` keeps digests to one per period; `covered_message_id` is the newest message a digest
has counted, so the next one counts only what came after it and never repeats a message.
Message ids grow across every conversation (one table), so one number per person is enough.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import AppBase, UTCDateTime


class DigestState(AppBase):
    __tablename__ = "digest_state"

    user_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    covered_message_id: Mapped[int] = mapped_column(BigInteger, default=0)
