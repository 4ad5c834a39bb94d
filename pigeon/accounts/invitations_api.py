"""Invitations over JSON: send, verify a link, list and revoke (staff), accept or decline
(the invited account), and one's own pending ones. Thin: `accounts.invitations` holds the
rules."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from pigeon.accounts import invitation_lists, invitations
from pigeon.accounts.invitation_schemas import (
    TOKEN,
    InvitationOut,
    InvitationSendIn,
    InvitationSentOut,
    InvitationTokenIn,
    InvitationVerifyOut,
    invitation_dict,
    sent_dict,
    verify_dict,
)
from pigeon.core.deps import CurrentUser, Rt, Uow
from pigeon.core.types import UserIdPath

router = APIRouter(tags=["invitations"])
Token = Annotated[str, Path(min_length=1, max_length=200, pattern=TOKEN)]
Responses = dict[int | str, dict[str, Any]]
INVALID: Responses = {
    404: {"description": "`invalid_invitation`: unknown, expired, used, declined or revoked"}
}
NOT_YOURS: Responses = {403: {"description": "`not_your_invitation`: sent to another address"}}


@router.post(
    "/invitations/send",
    status_code=201,
    response_model=InvitationSentOut,
    summary="Invite someone by email",
    responses={
        403: {"description": "`staff_only`, `not_your_community` or `tier_not_allowed`"},
        404: {"description": "`community_not_found`"},
        409: {"description": "`already_member`"},
        429: {"description": "`rate_limited`: too many invitations"},
    },
)
async def send(body: InvitationSendIn, user: CurrentUser, rt: Rt, uow: Uow) -> dict[str, Any]:
    """Admins invite into any community with any tier; managers and owners into their own
    communities, free tier only. The email goes out through the outbox; the answer's `link`
    is shown this once. A pending invitation to the same address and community is replaced."""
    sent = await invitations.send(
        rt, uow, user, email=str(body.email), community_id=body.community_id, tier=body.tier
    )
    return sent_dict(sent, uow.clock.now())


@router.get(
    "/invitations/verify/{token}",
    response_model=InvitationVerifyOut,
    summary="What an invitation's link offers (no sign-in)",
    responses=INVALID,
)
async def verify(token: Token, rt: Rt) -> dict[str, Any]:
    async with rt.dbs.app.read() as session:
        return verify_dict(await invitations.verify(session, token, rt.clock.now()))


@router.get(
    "/invitations",
    response_model=list[InvitationOut],
    summary="Invitations sent (admins: all; managers: their communities')",
    responses={403: {"description": "`staff_only`"}},
)
async def list_sent(
    user: CurrentUser,
    rt: Rt,
    state: invitations.State | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[dict[str, Any]]:
    now = rt.clock.now()
    async with rt.dbs.app.read() as session:
        rows = await invitation_lists.list_sent(session, user, now, state=state, limit=limit)
        names = await invitation_lists.community_names(session, rows)
    return [invitation_dict(r, names.get(r.community_id), now) for r in rows]


@router.post(
    "/invitations/{invitation_id}/revoke",
    response_model=InvitationOut,
    summary="Withdraw a pending invitation",
    responses={
        404: {"description": "`invitation_not_found`"},
        409: {"description": "`not_pending`"},
    },
)
async def revoke(invitation_id: UserIdPath, user: CurrentUser, uow: Uow) -> dict[str, Any]:
    inv = await invitations.revoke(uow, user, invitation_id)
    names = await invitation_lists.community_names(uow.app, [inv])
    return invitation_dict(inv, names.get(inv.community_id), uow.clock.now())


@router.post(
    "/invitations/accept",
    response_model=InvitationOut,
    summary="Accept an invitation into another community",
    responses={**INVALID, **NOT_YOURS},
)
async def accept(body: InvitationTokenIn, user: CurrentUser, uow: Uow) -> dict[str, Any]:
    """The signed-in account must be the invited address's. It joins the community; a tier
    the invitation names is given if higher than theirs (an invitation never lowers one)."""
    inv = await invitations.accept(uow, user, token=body.token, invitation_id=body.invitation_id)
    names = await invitation_lists.community_names(uow.app, [inv])
    return invitation_dict(inv, names.get(inv.community_id), uow.clock.now())


@router.post(
    "/invitations/decline",
    response_model=InvitationOut,
    summary="Decline an invitation",
    responses={**INVALID, **NOT_YOURS},
)
async def decline(body: InvitationTokenIn, user: CurrentUser, uow: Uow) -> dict[str, Any]:
    inv = await invitations.decline(uow, user, token=body.token, invitation_id=body.invitation_id)
    names = await invitation_lists.community_names(uow.app, [inv])
    return invitation_dict(inv, names.get(inv.community_id), uow.clock.now())


@router.get(
    "/me/invitations",
    response_model=list[InvitationOut],
    summary="My pending invitations (accept or decline them by id)",
)
async def mine(user: CurrentUser, rt: Rt) -> list[dict[str, Any]]:
    now = rt.clock.now()
    async with rt.dbs.app.read() as session:
        rows = await invitation_lists.list_mine(session, user, now)
        names = await invitation_lists.community_names(session, rows)
    return [invitation_dict(r, names.get(r.community_id), now) for r in rows]
