"""What each person may do to a group, as the pages are told it (`groups.powers`), agrees with
what the changes themselves allow; and adding people is held to the rate of starting."""

from __future__ import annotations

import pytest

from pigeon.core.errors import AppError
from pigeon.messaging import groups
from pigeon.messaging.service import access_conversation
from tests.support.acting import acting_as
from tests.support.people import group

API = "/api/v1"


async def _powers(app, who, gid: int) -> groups.Powers:  # type: ignore[no-untyped-def]
    async with acting_as(app.state.runtime, app.state.sends, who.id) as ctx:
        return groups.powers(ctx.viewer, await access_conversation(ctx, gid))


async def _refused(app, who, change) -> str | None:  # type: ignore[no-untyped-def]
    """The code the change is refused with, or None; nothing it did is kept."""
    try:
        async with acting_as(app.state.runtime, app.state.sends, who.id) as ctx:
            await change(ctx)
            await ctx.uow.rollback()
    except AppError as exc:
        return exc.code
    return None


async def test_powers_agree_with_the_changes(app, client, people) -> None:
    gid = await group(client, people.priv, people.free, people.free2)
    owner = await _powers(app, people.priv, gid)
    assert (owner.rename, owner.add, owner.delete) == (True, True, True)
    assert owner.removable == {people.free.id, people.free2.id}
    member = await _powers(app, people.free, gid)
    assert (member.rename, member.add, member.delete, member.removable) == (
        False,
        False,
        False,
        frozenset(),
    )
    assert member.add_refusal is None  # not a manager: there is nothing to explain

    async def rename(ctx):  # type: ignore[no-untyped-def]
        await groups.rename(ctx, gid, "Ours")

    async def add(ctx):  # type: ignore[no-untyped-def]
        await groups.add_members(ctx, gid, [people.plus.id])

    async def remove_owner(ctx):  # type: ignore[no-untyped-def]
        await groups.remove_member(ctx, gid, people.priv.id)

    async def delete(ctx):  # type: ignore[no-untyped-def]
        await groups.delete_group(ctx, gid)

    assert await _refused(app, people.free, rename) == "not_group_admin"
    assert await _refused(app, people.free, add) == "not_group_admin"
    assert await _refused(app, people.free, remove_owner) == "not_group_admin"
    assert await _refused(app, people.free, delete) == "not_group_owner"
    for allowed in (rename, add, delete):
        assert await _refused(app, people.priv, allowed) is None


async def test_a_free_owner_may_rename_but_is_told_why_they_cannot_add(app, client, people) -> None:
    gid = await group(client, people.priv, people.free)
    r = await client.patch(
        f"{API}/admin/users/{people.priv.id}", json={"tier": "free"}, headers=people.admin.headers
    )
    assert r.status_code == 200
    powers = await _powers(app, people.priv, gid)
    assert powers.rename and not powers.add and powers.delete
    assert powers.add_refusal and "Free members" in powers.add_refusal


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"rate_limits_enabled": True, "rate_start_per_hour": 12})


async def test_adding_people_counts_as_starting(client, people) -> None:
    """Each add reaches new people like a new conversation does: the same hourly limit."""
    gid = await group(client, people.priv, people.free)  # one of a burst of two
    add = f"{API}/groups/{gid}/members"
    r = await client.post(add, json={"user_ids": [people.plus.id]}, headers=people.priv.headers)
    assert r.status_code == 200
    r = await client.post(add, json={"user_ids": [people.free2.id]}, headers=people.priv.headers)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    r = await client.post(add, json={"user_ids": [people.plus.id]}, headers=people.priv.headers)
    assert r.status_code == 200  # nobody new: nothing to limit
