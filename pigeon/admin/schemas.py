from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from pigeon.accounts.schemas import Role, Tier
from pigeon.core.schemas import In


class MessagingSwitchIn(In):
    """Either `enabled` (true: on, false: off) or `mode`: "on", "read_only" (members read,
    search and export; nothing new is sent) or "off"."""

    enabled: StrictBool | None = None
    mode: Literal["on", "read_only", "off"] | None = None

    @model_validator(mode="after")
    def _one(self) -> MessagingSwitchIn:
        if (self.enabled is None) == (self.mode is None):
            raise ValueError("give either enabled or mode")
        return self

    @property
    def wanted(self) -> str:
        if self.mode is not None:
            return self.mode
        return "on" if self.enabled else "off"


class MessagingSwitchOut(BaseModel):
    enabled: bool = Field(description="on or read-only: members can read")
    mode: Literal["on", "read_only", "off"]
    updated_at: dt.datetime | None = None
    updated_by: int | None = None


class AdminUserUpdate(In):
    tier: Tier | None = None
    role: Role | None = None
    is_active: StrictBool | None = None


class AccountDeleteIn(In):
    password: str = Field(min_length=1, max_length=256, description="your current password")
    messages: Literal["keep", "remove"] = Field(
        description='"keep": they stay, shown as from "Deleted member"; "remove": deleted'
    )


class AdminAccountDeleteIn(In):
    messages: Literal["keep", "remove"]


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: dt.datetime
    actor_id: int | None
    actor_label: str
    action: str
    target_type: str | None
    target_id: int | None
    data: dict[str, Any]


class OutboxEmailOut(BaseModel):
    """An outbox row as admins see it: where it goes and how delivery went, never its body."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    to_address: str
    subject: str
    kind: str
    created_at: dt.datetime
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    sent_at: dt.datetime | None
    dead_at: dt.datetime | None
