"""Invitations: the one way into a closed server, and the only way into another community.

Every path (the API, the pages, registration, the CLI) comes here, so the rules hold once:

| rule                                                         | code                  |
| ------------------------------------------------------------ | --------------------- |
| admins invite into any community, with any tier              |                       |
| managers and owners invite only into their own communities   | not_your_community    |
| ... and give no tier above free (only admins change tiers)   | tier_not_allowed      |
| members do not invite                                        | staff_only            |
| a member of the community is not invited into it again       | already_member        |
| an unknown, expired, used, declined or revoked link: one answer | invalid_invitation |
| only the invited address's account accepts or declines       | not_your_invitation   |

A link is a random token of which only the digest is kept; the answer to sending shows the link
once (an admin without email can pass it on), the email carries it, and nothing shows it again.
Sending again to the same address and community replaces (revokes) the pending one.

Nobody is moved without consent: an existing account accepts or declines, and registering with
the link is the new person's consent. An invitation raises a tier, never lowers one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.accounts import communities
from pigeon.accounts import service as accounts
from pigeon.accounts.models import TIERS, Community, Invitation, User
from pigeon.core.audit import audit, audit_user_changes
from pigeon.core.db import rowcount
from pigeon.core.errors import Conflict, NotAllowed, NotFound
from pigeon.core.principal import Principal
from pigeon.core.runtime import Runtime
from pigeon.core.security import new_opaque_token, token_digest
from pigeon.core.uow import UnitOfWork
from pigeon.email.outbox import check_address, queue_email
from pigeon.settings import Settings

State = Literal["pending", "accepted", "expired", "revoked", "declined"]
INVALID = "This invitation link is not valid: it may have expired, been used or been withdrawn."


@dataclasses.dataclass(frozen=True)
class Sent:
    invitation: Invitation
    community: Community
    link: str  # holds the token: shown once, to the sender


@dataclasses.dataclass(frozen=True)
class Found:
    invitation: Invitation
    community: Community
    existing_account: bool


def state_of(invitation: Invitation, now: dt.datetime) -> State:
    if invitation.used_at is not None:
        return "accepted"
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.declined_at is not None:
        return "declined"
    return "expired" if invitation.expires_at <= now else "pending"


def pending(now: dt.datetime) -> ColumnElement[bool]:
    """`state_of(...) == "pending"` as SQL: every change below is conditional on it, so two
    answers at once (two registrations, accept and revoke) cannot both take effect."""
    return and_(
        Invitation.used_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.declined_at.is_(None),
        Invitation.expires_at > now,
    )


def link_for(settings: Settings, token: str, *, existing_account: bool) -> str:
    """New people register from the link; an existing account is asked to accept."""
    if existing_account:
        return f"{settings.public_url}/invitations/{token}"
    return f"{settings.public_url}/register?invitation={token}"


def check_may_invite(actor: Principal | None, community_id: int, tier: str | None) -> None:
    """The rule table's first rows; None is the system (the CLI), which may do anything."""
    if actor is None or actor.is_admin:
        return
    if actor.role not in ("manager", "owner"):
        raise NotAllowed("Only admins and managers send invitations.", code="staff_only")
    if community_id not in actor.community_ids:
        raise NotAllowed(
            "You can invite people only into your own communities.", code="not_your_community"
        )
    if tier not in (None, "free"):
        raise NotAllowed("Only admins give a tier above free.", code="tier_not_allowed")


async def _default_for(uow: UnitOfWork, actor: Principal | None, settings: Settings) -> int:
    """The inviter's community: the default one for admins and the system; a manager's own."""
    default = await communities.default_community(uow, settings)
    if actor is None or actor.is_admin or default.id in actor.community_ids:
        return default.id
    if not actor.community_ids:
        raise NotAllowed(
            "You can invite people only into your own communities.", code="not_your_community"
        )
    return min(actor.community_ids)


async def send(
    rt: Runtime,
    uow: UnitOfWork,
    actor: Principal | None,
    *,
    email: str,
    community_id: int | None = None,
    tier: str | None = None,
    system_label: str = "system",
) -> Sent:
    """Invite `email` into a community (the inviter's by default); the email goes out through
    the outbox in this transaction, and the answer carries the link once. Audited."""
    settings, session, now = rt.settings, uow.app, uow.clock.now()
    if community_id is None:
        community_id = await _default_for(uow, actor, settings)
    check_may_invite(actor, community_id, tier)
    await rt.limiter.check_invite(actor.id if actor else None)
    address = accounts.normalize_email(check_address(email))
    community = await communities.get_community(session, community_id)
    existing = await session.scalar(
        select(User).where(User.email == address, User.deleted_at.is_(None))
    )
    if existing is not None and await communities.is_member(session, community.id, existing.id):
        raise Conflict(f"{address} is already a member of {community.name}.", code="already_member")
    await session.execute(  # one pending invitation per address and community: the newest
        update(Invitation)
        .where(Invitation.email == address, Invitation.community_id == community.id, pending(now))
        .values(revoked_at=now)
    )
    token = new_opaque_token()
    invitation = Invitation(
        inviter_id=actor.id if actor else None,
        email=address,
        community_id=community.id,
        token_hash=token_digest(token),
        created_at=now,
        expires_at=now + dt.timedelta(days=settings.invitation_days),
        tier=tier,
    )
    session.add(invitation)
    await session.flush()
    link = link_for(settings, token, existing_account=existing is not None)
    context: dict[str, Any] = {
        "community": community.name,
        "inviter": actor.display_name if actor else None,
        "invitation_link": link,
        "existing_account": existing is not None,
        "expires_at": invitation.expires_at,
    }
    await queue_email(uow, address, "invitation", context, kind="invitation", settings=settings)
    _audit(uow, actor, "invitation.sent", invitation, system_label=system_label)
    return Sent(invitation=invitation, community=community, link=link)


def _audit(
    uow: UnitOfWork,
    actor: Principal | None,
    action: str,
    inv: Invitation,
    *,
    system_label: str = "system",
) -> None:
    audit(
        uow,
        action,
        actor_id=actor.id if actor else None,
        actor_label=actor.username if actor else system_label,
        target_type="invitation",
        target_id=inv.id,
        data={"email": inv.email, "community_id": inv.community_id, "tier": inv.tier},
    )


async def _by_token(session: AsyncSession, token: str) -> Invitation | None:
    return await session.scalar(
        select(Invitation).where(Invitation.token_hash == token_digest(token))
    )


async def verify(session: AsyncSession, token: str, now: dt.datetime) -> Found:
    """What a link offers, if it still works; one answer for every way it may not."""
    invitation = await _by_token(session, token) if token else None
    if invitation is None or state_of(invitation, now) != "pending":
        raise NotFound(INVALID, code="invalid_invitation")
    community = await communities.get_community(session, invitation.community_id)
    existing = await session.scalar(
        select(User.id).where(User.email == invitation.email, User.deleted_at.is_(None))
    )
    return Found(invitation, community, existing_account=existing is not None)


def check_same_email(invitation: Invitation, email: str) -> None:
    if accounts.normalize_email(email) != invitation.email:
        raise NotAllowed(
            f"This invitation is for {invitation.email}; use that address.",
            code="not_your_invitation",
        )


async def redeem(uow: UnitOfWork, invitation_id: int, user: User) -> Invitation:
    """Use an invitation for `user`: marked used only if it was still pending (a conditional
    update, so of two at once exactly one wins; the loser gets invalid_invitation), then the
    membership and the tier it names. Registration and accepting both end here, so whatever
    else an invitation proves (the address is theirs) belongs here too."""
    now = uow.clock.now()
    result = await uow.app.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, pending(now))
        .values(used_at=now, accepted_by_id=user.id)
    )
    if not rowcount(result):
        raise NotFound(INVALID, code="invalid_invitation")
    invitation = await uow.app.get(Invitation, invitation_id, populate_existing=True)
    assert invitation is not None
    await communities.join(uow, invitation.community_id, user.id)
    if invitation.tier and TIERS.index(invitation.tier) > TIERS.index(user.tier):
        changes = await accounts.set_tier_role(uow, user, tier=invitation.tier)
        audit_user_changes(
            uow,
            changes,
            actor_id=invitation.inviter_id,
            actor_label="invitation",
            user_id=user.id,
            username=user.username,
        )
    return invitation


async def _mine(
    uow: UnitOfWork, actor: Principal, token: str | None, invitation_id: int | None
) -> tuple[Invitation, User]:
    """The invitation (by link or, from one's own list, by id) and the signed-in account, which
    must be the one it was sent to."""
    session = uow.app
    if token is not None:
        invitation = await _by_token(session, token)
    else:
        invitation = await session.get(Invitation, invitation_id) if invitation_id else None
    if invitation is None or state_of(invitation, uow.clock.now()) != "pending":
        raise NotFound(INVALID, code="invalid_invitation")
    user = await accounts.get_user(session, actor.id)
    check_same_email(invitation, user.email)
    return invitation, user


async def accept(
    uow: UnitOfWork, actor: Principal, *, token: str | None = None, invitation_id: int | None = None
) -> Invitation:
    """An existing member consents: they join the community (and a higher tier). Audited."""
    invitation, user = await _mine(uow, actor, token, invitation_id)
    invitation = await redeem(uow, invitation.id, user)
    _audit(uow, actor, "invitation.accepted", invitation)
    return invitation


async def decline(
    uow: UnitOfWork, actor: Principal, *, token: str | None = None, invitation_id: int | None = None
) -> Invitation:
    """An existing member says no: nothing changes for them, and the link stops working."""
    invitation, _ = await _mine(uow, actor, token, invitation_id)
    now = uow.clock.now()
    result = await uow.app.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, pending(now))
        .values(declined_at=now)
    )
    if not rowcount(result):
        raise NotFound(INVALID, code="invalid_invitation")
    await uow.app.refresh(invitation)
    _audit(uow, actor, "invitation.declined", invitation)
    return invitation


async def revoke(uow: UnitOfWork, actor: Principal | None, invitation_id: int) -> Invitation:
    """Withdraw a pending invitation: admins any, managers those of their communities."""
    invitation = await uow.app.get(Invitation, invitation_id)
    if invitation is None or (actor is not None and not _may_see(actor, invitation)):
        raise NotFound("No such invitation.", code="invitation_not_found")
    now = uow.clock.now()
    result = await uow.app.execute(
        update(Invitation)
        .where(Invitation.id == invitation_id, pending(now))
        .values(revoked_at=now)
    )
    if not rowcount(result):
        state = state_of(invitation, now)
        raise Conflict(
            f"Only a pending invitation can be revoked; this one is {state}.", code="not_pending"
        )
    await uow.app.refresh(invitation)
    _audit(uow, actor, "invitation.revoked", invitation)
    return invitation


def _may_see(actor: Principal, invitation: Invitation) -> bool:
    if actor.is_admin:
        return True
    return actor.role in ("manager", "owner") and invitation.community_id in actor.community_ids
