from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from pigeon.accounts import blocks, communities, privacy
from pigeon.accounts import service as accounts
from pigeon.accounts.schemas import (
    CommunityCreate,
    CommunityOut,
    UserIdIn,
    UserIdsIn,
    UserOut,
    UserUpdate,
)
from pigeon.accounts.views import community_dict, user_dict
from pigeon.core.deps import AdminUser, CurrentUser, Dbs, Rt, Uow
from pigeon.core.types import NO_NUL, UserIdPath

router = APIRouter(tags=["users"])


@router.get("/users/search", response_model=list[UserOut], response_model_exclude_unset=True)
async def search(
    user: CurrentUser,
    rt: Rt,
    q: Annotated[str, Query(max_length=100, pattern=NO_NUL)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[dict[str, Any]]:
    async with rt.dbs.app.read() as session:
        found = await accounts.search_users(session, user, q=q, limit=limit)
    hidden = await privacy.last_seen_hidden(rt, user, (u.id for u in found))
    return [user_dict(u, private=user.is_admin, last_seen=u.id not in hidden) for u in found]


@router.get("/users/{user_id}", response_model=UserOut, response_model_exclude_unset=True)
async def get_user(user_id: UserIdPath, user: CurrentUser, rt: Rt) -> dict[str, Any]:
    async with rt.dbs.app.read() as session:
        found = await accounts.visible_user(session, user, user_id)
    hidden = await privacy.last_seen_hidden(rt, user, [found.id])
    return user_dict(
        found, private=user.is_admin or found.id == user.id, last_seen=found.id not in hidden
    )


@router.put("/users/{user_id}", response_model=UserOut, response_model_exclude_unset=True)
async def update_user(
    user_id: UserIdPath, body: UserUpdate, user: CurrentUser, uow: Uow, rt: Rt
) -> dict[str, Any]:
    target, _ = await accounts.update_user(
        uow,
        user,
        user_id,
        limiter=rt.limiter,
        display_name=body.display_name,
        bio=body.bio,
        avatar_url=body.avatar_url,
        tier=body.tier,
        role=body.role,
        show_last_seen=body.show_last_seen,
        read_receipts=body.read_receipts,
    )
    return user_dict(target, private=True)


# --- contacts ---


@router.get(
    "/contacts", response_model=list[UserOut], response_model_exclude_unset=True, tags=["contacts"]
)
async def contacts(user: CurrentUser, rt: Rt) -> list[dict[str, Any]]:
    async with rt.dbs.app.read() as session:
        found = await blocks.list_contacts(session, user.id)
    hidden = await privacy.last_seen_hidden(rt, user, (u.id for u in found))
    return [user_dict(u, last_seen=u.id not in hidden) for u in found]


@router.post(
    "/contacts",
    status_code=201,
    response_model=UserOut,
    response_model_exclude_unset=True,
    tags=["contacts"],
)
async def add_contact(body: UserIdIn, user: CurrentUser, uow: Uow) -> dict[str, Any]:
    return user_dict(await blocks.add_contact(uow, user, body.user_id))


@router.delete("/contacts/{user_id}", status_code=204, tags=["contacts"])
async def remove_contact(user_id: UserIdPath, user: CurrentUser, uow: Uow) -> Response:
    await blocks.remove_contact(uow.app, user.id, user_id)
    return Response(status_code=204)


# --- blocks ---


@router.get(
    "/blocks", response_model=list[UserOut], response_model_exclude_unset=True, tags=["blocks"]
)
async def my_blocks(user: CurrentUser, rt: Rt) -> list[dict[str, Any]]:
    async with rt.dbs.app.read() as session:
        return [user_dict(u, last_seen=False) for u in await blocks.list_blocks(session, user.id)]


@router.post(
    "/blocks",
    status_code=201,
    response_model=UserOut,
    response_model_exclude_unset=True,
    tags=["blocks"],
)
async def add_block(body: UserIdIn, user: CurrentUser, uow: Uow) -> dict[str, Any]:
    return user_dict(await blocks.add_block(uow, user, body.user_id), last_seen=False)


@router.delete("/blocks/{user_id}", status_code=204, tags=["blocks"])
async def remove_block(user_id: UserIdPath, user: CurrentUser, uow: Uow) -> Response:
    await blocks.remove_block(uow, user.id, user_id)
    return Response(status_code=204)


# --- communities ---


@router.get("/communities", response_model=list[CommunityOut], tags=["communities"])
async def my_communities(user: CurrentUser, dbs: Dbs) -> list[dict[str, Any]]:
    async with dbs.app.read() as session:
        return [community_dict(c) for c in await communities.list_communities(session, user)]


@router.post("/communities", status_code=201, response_model=CommunityOut, tags=["communities"])
async def create_community(body: CommunityCreate, user: AdminUser, uow: Uow) -> dict[str, Any]:
    community = await communities.create_community(uow, user, name=body.name, slug=body.slug)
    return community_dict(community)


@router.get(
    "/communities/{community_id}/members",
    response_model=list[UserOut],
    response_model_exclude_unset=True,
    tags=["communities"],
)
async def members(community_id: UserIdPath, user: CurrentUser, dbs: Dbs) -> list[dict[str, Any]]:
    communities.check_manage_community(user, community_id)
    async with dbs.app.read() as session:
        await communities.get_community(session, community_id)
        found = await communities.community_members(session, community_id)
    return [user_dict(u, private=user.is_admin) for u in found]


@router.post("/communities/{community_id}/members", tags=["communities"])
async def add_members(
    community_id: UserIdPath, body: UserIdsIn, user: CurrentUser, uow: Uow
) -> dict[str, Any]:
    return {"added": await communities.add_members(uow, user, community_id, body.user_ids)}


@router.delete(
    "/communities/{community_id}/members/{user_id}", status_code=204, tags=["communities"]
)
async def remove_member(
    community_id: UserIdPath, user_id: UserIdPath, user: CurrentUser, uow: Uow
) -> Response:
    await communities.remove_member(uow, user, community_id, user_id)
    return Response(status_code=204)
