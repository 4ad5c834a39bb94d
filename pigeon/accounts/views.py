"""How people are shown to clients: one shape, with email only for oneself and admins."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pigeon.accounts.models import Community, User


def community_dict(c: Community) -> dict[str, Any]:
    return {"id": c.id, "name": c.name, "slug": c.slug, "is_default": c.is_default}


def user_dict(
    user: User,
    *,
    private: bool = False,
    communities: Iterable[Community] | None = None,
    last_seen: bool = True,
) -> dict[str, Any]:
    """`last_seen` False hides when they were last online (a block stands between)."""
    out: dict[str, Any] = {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "avatar_url": user.avatar_url,
        "bio": user.bio,
        "tier": user.tier,
        "role": user.role,
        "last_seen_at": user.last_seen_at if last_seen else None,
    }
    if private:
        out["email"] = user.email
        out["email_verified"] = user.email_verified_at is not None
        out["show_last_seen"] = user.show_last_seen
        out["read_receipts"] = user.read_receipts
        out["is_active"] = user.is_active
        out["suspended_until"] = user.suspended_until
    if communities is not None:
        out["communities"] = [community_dict(c) for c in communities]
    return out
