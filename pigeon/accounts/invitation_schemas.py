"""Invitations as clients send and see them. The link (holding the token) appears once, in
the answer to sending; nothing else ever shows it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, EmailStr, Field, model_validator

from pigeon.accounts.invitations import Found, Sent, state_of
from pigeon.accounts.models import Community, Invitation
from pigeon.accounts.schemas import Tier
from pigeon.core.schemas import In
from pigeon.core.types import INT32_MAX

TOKEN = r"^[A-Za-z0-9_-]+$"


class InvitationSendIn(In):
    email: EmailStr = Field(max_length=254)
    community_id: int | None = Field(
        default=None, ge=1, le=INT32_MAX, description="default: the inviter's community"
    )
    tier: Tier | None = Field(
        default=None, description="the tier the person gets (managers: free only)"
    )


class InvitationTokenIn(In):
    """By the link's token, or (from one's own list, `GET /me/invitations`) by id."""

    token: str | None = Field(default=None, min_length=1, max_length=200, pattern=TOKEN)
    invitation_id: int | None = Field(default=None, ge=1, le=INT32_MAX)

    @model_validator(mode="after")
    def _one(self) -> InvitationTokenIn:
        if (self.token is None) == (self.invitation_id is None):
            raise ValueError("give either token or invitation_id")
        return self


class CommunityRef(BaseModel):
    id: int
    name: str


class InvitationOut(BaseModel):
    id: int
    email: str
    community: CommunityRef
    tier: str | None
    state: str = Field(description="pending, accepted, expired, revoked or declined")
    inviter_id: int | None = Field(description="None: sent by the system (the CLI)")
    created_at: dt.datetime
    expires_at: dt.datetime
    used_at: dt.datetime | None


class InvitationSentOut(InvitationOut):
    link: str = Field(description="the invitation's link: shown this once, never again")


class InvitationVerifyOut(BaseModel):
    email: str
    community: CommunityRef
    tier: str | None
    expires_at: dt.datetime
    existing_account: bool = Field(
        description="true: sign in and accept; false: register with the token"
    )


def invitation_dict(
    inv: Invitation, community: Community | None, now: dt.datetime
) -> dict[str, Any]:
    return {
        "id": inv.id,
        "email": inv.email,
        "community": {"id": inv.community_id, "name": community.name if community else ""},
        "tier": inv.tier,
        "state": state_of(inv, now),
        "inviter_id": inv.inviter_id,
        "created_at": inv.created_at,
        "expires_at": inv.expires_at,
        "used_at": inv.used_at,
    }


def sent_dict(sent: Sent, now: dt.datetime) -> dict[str, Any]:
    return {**invitation_dict(sent.invitation, sent.community, now), "link": sent.link}


def verify_dict(found: Found) -> dict[str, Any]:
    inv = found.invitation
    return {
        "email": inv.email,
        "community": {"id": found.community.id, "name": found.community.name},
        "tier": inv.tier,
        "expires_at": inv.expires_at,
        "existing_account": found.existing_account,
    }
