from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

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
    is_active: bool | None = None
    suspended_until: dt.datetime | None = None
    communities: list[CommunityOut] | None = None


class UserUpdate(In):
    display_name: Line(64, "display_name") | None = None  # type: ignore[valid-type]
    bio: Paragraph(500, "bio") | None = None  # type: ignore[valid-type]
    avatar_url: str | None = Field(default=None, max_length=500, pattern=r"^(https?://\S+)?$")
    tier: Tier | None = None
    role: Role | None = None


class UserIdIn(In):
    user_id: UserId


class UserIdsIn(In):
    user_ids: list[UserId] = Field(min_length=1, max_length=500)


class CommunityCreate(In):
    name: Line(100, "name")  # type: ignore[valid-type]
    slug: str = Field(min_length=2, max_length=50, pattern=r"^[a-z0-9][a-z0-9-]*$")
