from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from pigeon.core.schemas import In, Line, Paragraph
from pigeon.core.types import UserId

Tier = Literal["free", "privileged", "privileged_plus"]
Role = Literal["member", "manager", "owner", "admin"]


class CommunityOut(BaseModel):
    id: int
    name: str
    slug: str
    is_default: bool


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    avatar_url: str | None
    bio: str
    tier: str
    role: str
    last_seen_at: dt.datetime | None
    email: str | None = None
    email_verified: bool | None = Field(
        default=None,
        description="oneself and admins: whether the person followed a link sent to the email",
    )
    pending_email: str | None = Field(
        default=None, description="yourself: a new address waiting for its emailed link"
    )
    is_active: bool | None = None
    suspended_until: dt.datetime | None = None
    show_last_seen: bool | None = Field(
        default=None, description="oneself and admins: whether others see when they were online"
    )
    read_receipts: bool | None = Field(
        default=None, description="oneself and admins: whether others see how far they have read"
    )
    communities: list[CommunityOut] | None = None


class UserUpdate(In):
    display_name: Line(64, "display_name") | None = None  # type: ignore[valid-type]
    bio: Paragraph(500, "bio") | None = None  # type: ignore[valid-type]
    avatar_url: str | None = Field(default=None, max_length=500, pattern=r"^(https?://\S+)?$")
    tier: Tier | None = None
    role: Role | None = None
    show_last_seen: StrictBool | None = Field(
        default=None,
        description="yourself only: false hides when you are online and were last seen, and "
        "then you see nobody's (both ways)",
    )
    read_receipts: StrictBool | None = Field(
        default=None,
        description='yourself only: false hides how far you have read (no "Seen"), and '
        "then you see nobody's (both ways)",
    )


class UserIdIn(In):
    user_id: UserId


class UserIdsIn(In):
    user_ids: list[UserId] = Field(min_length=1, max_length=500)


class CommunityCreate(In):
    name: Line(100, "name")  # type: ignore[valid-type]
    slug: str = Field(min_length=2, max_length=50, pattern=r"^[a-z0-9][a-z0-9-]*$")


class NotificationsOut(BaseModel):
    """What one is told while away. Muted conversations and message requests never notify."""

    email_digest: bool = Field(
        description="an email when messages wait for you while you are away: how many and from "
        "whom, never what they say; at most one per PIGEON_DIGEST_DELAY_SECONDS"
    )


class NotificationsUpdate(In):
    email_digest: StrictBool | None = Field(default=None, description="turn email digests on/off")
