"""Users, communities and memberships, contacts, blocks, invitations (primary database)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.db import AppBase, UTCDateTime
from pigeon.core.principal import STAFF_ROLES  # noqa: F401 - beside tiers and roles

TIERS = ("free", "privileged", "privileged_plus")
ROLES = ("member", "manager", "owner", "admin")


class User(AppBase):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(64))
    bio: Mapped[str] = mapped_column(Text, default="")
    avatar_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    tier: Mapped[str] = mapped_column(String(20), default="free")
    role: Mapped[str] = mapped_column(String(20), default="member")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    suspended_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # privacy, both reciprocal: who hides theirs sees nobody's
    show_last_seen: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    read_receipts: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # set when the account was deleted: the row stays (messages point at it), anonymised
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # notifications: an email digest of unread messages while away (`accounts.notifications`)
    email_digest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # when the person last proved they read mail sent to `email` (a verification, reset or
    # change-of-email link followed); None: not yet, and the pages say so
    email_verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Community(AppBase):
    __tablename__ = "community"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(50), unique=True)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Membership(AppBase):
    __tablename__ = "membership"

    community_id: Mapped[int] = mapped_column(
        ForeignKey("community.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    joined_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_membership_user_id", "user_id"),)


class Contact(AppBase):
    __tablename__ = "contact"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Block(AppBase):
    __tablename__ = "block"

    blocker_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_id: Mapped[int] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_block_blocked_id", "blocked_id"),)


class Invitation(AppBase):
    """A link that lets one email address into one community (and tier).

    Only the token's digest is kept. `used_at` is when it was redeemed (an account made with
    it, or an existing member's consent), by `accepted_by_id`; a revoked, declined, used or
    expired invitation lets nobody in. `inviter_id` is None when the system (the CLI) sent it.
    """

    __tablename__ = "invitation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inviter_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="CASCADE"), nullable=True
    )
    email: Mapped[str] = mapped_column(String(254))
    community_id: Mapped[int] = mapped_column(ForeignKey("community.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # the tier the invited person gets (None: the default, free, and never a lowering)
    tier: Mapped[str | None] = mapped_column(String(20), nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    declined_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    accepted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("user.id", ondelete="SET NULL"), nullable=True
    )

    __table_args__ = (Index("ix_invitation_email", "email"),)
