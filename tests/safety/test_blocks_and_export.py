"""Blocks inside groups, and a member's export of their own data."""

from __future__ import annotations

import io
import json
import zipfile

from tests.support.people import dm, send

API = "/api/v1"


async def block(client, who, whom):  # type: ignore[no-untyped-def]
    r = await client.post(f"{API}/blocks", json={"user_id": whom.id}, headers=who.headers)
    assert r.status_code == 201, r.text


async def test_a_blocker_does_not_see_the_blocked_persons_group_messages(client, people):
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        )
    ).json()
    await send(client, people.free2, group["id"], "before the block")
    await block(client, people.free, people.free2)
    await send(client, people.free2, group["id"], "after the block")
    await send(client, people.priv, group["id"], "from the owner")

    def bodies(r):  # type: ignore[no-untyped-def]
        return [m["body"] for m in r.json()]

    r = await client.get(f"{API}/conversations/{group['id']}/messages", headers=people.free.headers)
    assert bodies(r) == ["from the owner"]
    r = await client.get(f"{API}/conversations/{group['id']}/messages", headers=people.priv.headers)
    assert bodies(r) == ["before the block", "after the block", "from the owner"]
    unread = (await client.get(f"{API}/unread", headers=people.free.headers)).json()
    assert unread["conversations"][str(group["id"])] == 2  # the one after the block not counted


async def test_the_blocked_person_cannot_add_their_blocker_to_a_group(client, people):
    await block(client, people.free, people.priv)
    r = await client.post(
        f"{API}/groups",
        headers=people.priv.headers,
        json={"title": "Sneaky", "member_ids": [people.free.id, people.free2.id]},
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"

    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Plain", "member_ids": [people.free2.id]},
        )
    ).json()
    r = await client.post(
        f"{API}/groups/{group['id']}/members",
        json={"user_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"


async def test_a_member_exports_their_own_data(client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hello free")
    await send(client, people.free, conv["id"], "hello priv")
    other = await dm(client, people.priv, people.free2)
    await send(client, people.priv, other["id"], "not for free")

    r = await client.get(f"{API}/me/export", headers=people.free.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    data = json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("export.json"))
    assert data["profile"]["username"] == "free" and data["profile"]["email"]
    assert data["retention_days"] == 30
    [exported] = data["conversations"]
    assert exported["id"] == conv["id"]
    assert {p["username"] for p in exported["participants"]} == {"priv", "free"}
    assert [(m["body"], m["mine"]) for m in exported["messages"]] == [
        ("hello free", False),
        ("hello priv", True),
    ]
    assert "not for free" not in json.dumps(data)

    r = await client.get(f"{API}/me/export")
    assert r.status_code == 401


async def test_search_sees_what_history_shows_and_no_more(app, client, people):
    from tests.safety.conftest import travel

    conv = await dm(client, people.plus, people.free)
    await send(client, people.plus, conv["id"], "The Hobbit is back in stock")
    travel(app, people, days=40)
    await send(client, people.plus, conv["id"], "the hobbit, signed copy")
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        )
    ).json()
    await send(client, people.free2, group["id"], "hobbit fan here")
    await block(client, people.free, people.free2)
    other = await dm(client, people.priv, people.free2)
    await send(client, people.priv, other["id"], "a hobbit secret")

    async def found(who, **params):  # type: ignore[no-untyped-def]
        r = await client.get(
            f"{API}/messages/search", params={"q": "HOBBIT", **params}, headers=who.headers
        )
        assert r.status_code == 200, r.text
        return [m["body"] for m in r.json()]

    assert await found(people.plus) == ["the hobbit, signed copy", "The Hobbit is back in stock"]
    # free: 30 days of history, and not the person they blocked in the group
    assert await found(people.free) == ["the hobbit, signed copy"]
    assert await found(people.free2) == ["a hobbit secret", "hobbit fan here"]
    assert await found(people.free2, conversation_id=group["id"]) == ["hobbit fan here"]
    r = await client.get(
        f"{API}/messages/search",
        params={"q": "x", "conversation_id": other["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 404
    assert await found(people.plus, q="100%") == []


async def test_live_events_of_a_blocked_person_do_not_reach_the_blocker(app, client, people):
    import orjson

    from pigeon.core.events import EVENTS_CHANNEL, Envelope

    heard: list[tuple[str, list[int]]] = []

    async def listen(channel: str, payload: bytes) -> None:
        if channel == EVENTS_CHANNEL:
            envelope = Envelope.decode(payload)
            heard.append((orjson.loads(envelope.frame)["type"], envelope.users))

    app.state.runtime.broker.add_listener(listen)
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        )
    ).json()
    await block(client, people.free, people.free2)
    msg = (await send(client, people.free2, group["id"], "hello all")).json()
    r = await client.patch(
        f"{API}/messages/{msg['id']}", json={"body": "hello, edited"}, headers=people.free2.headers
    )
    assert r.status_code == 200

    def audience(kind: str) -> set[int]:
        [users] = [users for type, users in heard if type == kind]
        return set(users)

    assert audience("message.new") == {people.priv.id, people.free2.id}
    assert audience("message.updated") == {people.priv.id, people.free2.id}


async def test_a_blockers_conversation_list_previews_someone_else(client, people):
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        )
    ).json()
    await send(client, people.priv, group["id"], "welcome")
    await block(client, people.free, people.free2)
    await send(client, people.free2, group["id"], "blocked words")

    def preview(who):  # type: ignore[no-untyped-def]
        return client.get(f"{API}/conversations/{group['id']}", headers=who.headers)

    assert (await preview(people.free)).json()["last_message"]["body"] == "welcome"
    assert (await preview(people.priv)).json()["last_message"]["body"] == "blocked words"
    listed = (await client.get(f"{API}/conversations", headers=people.free.headers)).json()
    assert listed[0]["last_message"]["body"] == "welcome"
