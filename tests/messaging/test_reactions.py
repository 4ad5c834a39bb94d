"""Reactions: one of each emoji per person, counts and who, live, under the message's rules."""

from __future__ import annotations

import pytest

from tests.realtime import conftest as realtime
from tests.support.garbage import left_in_cycles
from tests.support.people import Person, dm, send

API = "/api/v1"
server = realtime.server  # the fixture: the test's app on a real socket, for WebSockets


async def react(client, who: Person, message_id: int, emoji: str):  # type: ignore[no-untyped-def]
    return await client.post(
        f"{API}/messages/{message_id}/reactions", json={"emoji": emoji}, headers=who.headers
    )


async def unreact(client, who: Person, message_id: int, emoji: str):  # type: ignore[no-untyped-def]
    return await client.request(
        "DELETE",
        f"{API}/messages/{message_id}/reactions",
        json={"emoji": emoji},
        headers=who.headers,
    )


async def test_reactions_count_who_reacted_and_come_with_the_message(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "new stock in")).json()
    r = await react(client, people.free, msg["id"], "👍")
    assert r.status_code == 201
    assert r.json() == [{"emoji": "👍", "count": 1, "user_ids": [people.free.id]}]
    assert (await react(client, people.free, msg["id"], "👍")).status_code == 200  # one each
    await react(client, people.priv, msg["id"], "👍")
    r = await react(client, people.free, msg["id"], "👨‍👩‍👧")  # any single emoji
    assert r.status_code == 201
    history = (
        await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers)
    ).json()
    assert history[-1]["reactions"] == [
        {"emoji": "👍", "count": 2, "user_ids": [people.free.id, people.priv.id]},
        {"emoji": "👨‍👩‍👧", "count": 1, "user_ids": [people.free.id]},
    ]
    r = await unreact(client, people.free, msg["id"], "👍")
    assert r.status_code == 200 and r.json()[0] == {
        "emoji": "👍",
        "count": 1,
        "user_ids": [people.priv.id],
    }
    r = await client.delete(
        f"{API}/messages/{msg['id']}/reactions",
        params={"emoji": "👨‍👩‍👧"},
        headers=people.free.headers,
    )
    assert r.status_code == 200 and [x["emoji"] for x in r.json()] == ["👍"]


@pytest.mark.parametrize("emoji", ["", "a", "👍👍", "<b>", "👍 ", "x" * 65])
async def test_a_reaction_is_one_emoji(client, people, emoji):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "hi")).json()
    r = await react(client, people.free, msg["id"], emoji)
    if emoji == "👍 ":
        assert r.status_code == 201  # trimmed
        return
    assert r.status_code == 422
    assert r.json()["error"]["code"] in ("invalid_emoji", "validation_error")


async def test_only_those_who_see_the_message_and_may_write_can_react(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "hi")).json()
    r = await react(client, people.free2, msg["id"], "👍")
    assert r.status_code == 404 and r.json()["error"]["code"] == "message_not_found"
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code == 201
    r = await react(client, people.free, msg["id"], "👍")
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    await client.delete(f"{API}/messages/{msg['id']}", headers=people.priv.headers)
    r = await react(client, people.priv, msg["id"], "👍")
    assert r.status_code == 404  # a deleted message takes no reactions


async def test_reactions_arrive_live_but_not_to_those_who_blocked_the_reactor(
    client, people, server
):
    r = await client.post(
        f"{API}/groups",
        json={"title": "Club", "member_ids": [people.free.id, people.free2.id]},
        headers=people.priv.headers,
    )
    group = r.json()
    msg = (await send(client, people.priv, group["id"], "meeting at 7")).json()
    await client.post(
        f"{API}/blocks", json={"user_id": people.free.id}, headers=people.free2.headers
    )
    author = await server.connect(people.priv)
    blocker = await server.connect(people.free2)
    await react(client, people.free, msg["id"], "🙏")
    frame = await author.next("reaction.added")
    assert frame["data"]["user_id"] == people.free.id and frame["data"]["emoji"] == "🙏"
    assert frame["data"]["reactions"][0]["count"] == 1
    await unreact(client, people.free, msg["id"], "🙏")
    assert (await author.next("reaction.removed"))["data"]["reactions"] == []
    assert [f["type"] for f in await blocker.drain() if f["type"].startswith("reaction")] == []


async def test_a_history_page_with_reactions_leaves_nothing_for_the_cycle_collector(client, people):
    """History is the most read page: what reading its reactions builds is freed as soon as
    the page is served, not left in reference cycles that pile up until the next collection."""
    conv = await dm(client, people.priv, people.free)
    for i in range(3):
        msg = (await send(client, people.priv, conv["id"], f"m{i}")).json()
        assert (await react(client, people.free, msg["id"], "👍")).status_code == 201

    async def page() -> None:
        r = await client.get(
            f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers
        )
        assert [m["reactions"][0]["count"] for m in r.json()] == [1, 1, 1]

    assert await left_in_cycles(page) == []
