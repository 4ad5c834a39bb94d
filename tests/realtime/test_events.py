"""Who receives each live event, and just as important, who must not."""

from __future__ import annotations

import datetime as dt

from tests.realtime.conftest import besides_presence
from tests.support.people import dm, send


async def received(socks):  # type: ignore[no-untyped-def]
    """{name: [event types]} for everything each socket got since the last look, presence
    aside (whom it reaches is `test_presence_reaches_people_who_share_a_conversation`'s)."""
    return {
        name: [f["type"] for f in besides_presence(await s.drain())] for name, s in socks.items()
    }


def only(got, expected):  # type: ignore[no-untyped-def]
    """Everyone not named in `expected` got nothing."""
    return {name: types for name, types in got.items() if types or name in expected}


async def test_who_receives_each_event(client, people, server):
    p = people
    socks = {
        name: await server.connect(p[name])
        for name in ("priv", "free", "free2", "plus", "manager", "outsider")
    }
    socks["free_phone"] = await server.connect(p.free)  # a second device
    assert only(await received(socks), {}) == {}

    # a new direct conversation: both people, every device; free accepting it (which `dm`
    # does) is news to free's own devices only
    conv = await dm(client, p.priv, p.free)
    assert only(await received(socks), {"priv", "free", "free_phone"}) == {
        "priv": ["conversation.updated"],
        "free": ["conversation.updated", "conversation.updated", "unread"],
        "free_phone": ["conversation.updated", "conversation.updated", "unread"],
    }

    # a message: both sides; the recipient's new unread total to each of their devices
    msg = (await send(client, p.priv, conv["id"], "hello")).json()
    got = await received(socks)
    assert only(got, {"priv", "free", "free_phone"}) == {
        "priv": ["message.new"],
        "free": ["message.new", "unread"],
        "free_phone": ["message.new", "unread"],
    }

    # reading (over the socket): a receipt to the other side, the badge to all own devices
    await socks["free"].send(type="read", conversation_id=conv["id"], message_id=msg["id"])
    # the drain's ping is answered after the read: frames are handled in order
    assert [f["type"] for f in besides_presence(await socks["free"].drain())] == ["unread"]
    frames = besides_presence(await socks["free_phone"].drain())
    assert [f["type"] for f in frames] == ["unread"] and frames[0]["data"]["total"] == 0
    receipt = besides_presence(await socks["priv"].drain())
    assert [f["type"] for f in receipt] == ["receipt.read"]
    assert receipt[0]["data"] == {
        "conversation_id": conv["id"],
        "user_id": p.free.id,
        "message_id": msg["id"],
        "unread_count": 0,
    }
    assert only(await received(socks), {}) == {}

    # edits and deletes: the conversation's members
    r = await client.patch(
        f"/api/v1/messages/{msg['id']}", json={"body": "hello!"}, headers=p.priv.headers
    )
    assert r.status_code == 200
    r = await client.delete(f"/api/v1/messages/{msg['id']}", headers=p.priv.headers)
    assert r.status_code == 204
    got = await received(socks)
    assert only(got, {"priv", "free", "free_phone"}) == {
        name: ["message.updated", "message.deleted"] for name in ("priv", "free", "free_phone")
    }

    # a group; free2 blocked priv, so priv's group messages do not reach free2
    r = await client.post(
        "/api/v1/conversations",
        json={
            "kind": "group",
            "title": "Book club",
            "participant_ids": [p.plus.id, p.free2.id, p.manager.id],
        },
        headers=p.priv.headers,
    )
    assert r.status_code == 201, r.text
    group = r.json()
    members = {"priv", "plus", "free2", "manager"}
    assert only(await received(socks), members) == {n: ["conversation.updated"] for n in members}
    r = await client.post("/api/v1/blocks", json={"user_id": p.priv.id}, headers=p.free2.headers)
    assert r.status_code in (200, 201), r.text
    assert (await send(client, p.priv, group["id"], "welcome")).status_code == 201
    assert only(await received(socks), members) == {
        "priv": ["message.new"],
        "plus": ["message.new", "unread"],
        "manager": ["message.new", "unread"],
        "free2": [],
    }
    assert (await send(client, p.plus, group["id"], "thanks")).status_code == 201
    got = await received(socks)
    assert got["free2"] == ["message.new", "unread"] and got["outsider"] == []

    # membership and title changes: everyone concerned, including who joins or leaves
    r = await client.post(
        f"/api/v1/groups/{group['id']}/members",
        json={"user_ids": [p.free.id]},
        headers=p.priv.headers,
    )
    assert r.status_code == 200, r.text
    now_members = members | {"free", "free_phone"}
    got = await received(socks)
    assert only(got, now_members) == {n: ["conversation.updated"] for n in now_members}
    r = await client.delete(
        f"/api/v1/groups/{group['id']}/members/{p.manager.id}", headers=p.priv.headers
    )
    assert r.status_code == 204
    r = await client.patch(
        f"/api/v1/conversations/{group['id']}", json={"title": "Readers"}, headers=p.priv.headers
    )
    assert r.status_code == 200, r.text
    got = await received(socks)
    assert got["manager"] == ["conversation.updated"]  # told they were removed, then nothing
    assert got["plus"] == ["conversation.updated", "conversation.updated"]
    assert got["outsider"] == []
    title = [f for f in socks["plus"].frames if f["type"] == "conversation.updated"][-1]
    assert title["data"] == {"conversation_id": group["id"], "change": "title", "title": "Readers"}


async def test_reading_on_one_device_clears_the_badge_on_the_others(client, people, server):
    conv = await dm(client, people.priv, people.free)
    phone = await server.connect(people.free)
    laptop = await server.connect(people.free)
    msg = (await send(client, people.priv, conv["id"], "are you there?")).json()
    for device in (phone, laptop):
        frames = await device.drain()
        assert [f["type"] for f in frames] == ["message.new", "unread"]
        assert frames[0]["id"] == msg["id"] and frames[1]["data"]["total"] == 1
    r = await client.post(
        f"/api/v1/conversations/{conv['id']}/read",
        json={"message_id": msg["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 200
    for device in (phone, laptop):
        frames = await device.drain()
        assert [(f["type"], f["data"]["total"]) for f in frames] == [("unread", 0)]


async def test_typing_is_throttled_expires_and_reaches_only_participants(
    client, people, server, clock
):
    clock.freeze()
    conv = await dm(client, people.priv, people.free)
    priv = await server.connect(people.priv)
    free = await server.connect(people.free)
    plus = await server.connect(people.plus)

    await priv.send(type="typing", conversation_id=conv["id"])
    await priv.send(type="typing", conversation_id=conv["id"])  # a repeat within the window
    await priv.drain()  # the server has handled both
    got = besides_presence(await free.drain())
    assert [f["type"] for f in got] == ["typing"]
    expires = dt.datetime.fromisoformat(got[0]["data"]["expires_at"])
    assert got[0]["data"]["user_id"] == people.priv.id
    assert expires == clock.now() + dt.timedelta(seconds=5)

    clock.advance(dt.timedelta(seconds=3))
    await priv.send(type="typing", conversation_id=conv["id"])
    assert besides_presence(await priv.drain()) == []
    got = besides_presence(await free.drain())
    assert [f["type"] for f in got] == ["typing"]
    assert besides_presence(await plus.drain()) == []

    # someone outside the conversation cannot announce typing into it
    await plus.send(type="typing", conversation_id=conv["id"])
    errors = besides_presence(await plus.drain())
    assert [f["data"]["code"] for f in errors] == ["conversation_not_found"]
    assert besides_presence(await free.drain()) == []


async def test_typing_in_a_group_skips_whoever_blocked_the_typist(client, people, server):
    r = await client.post(
        "/api/v1/conversations",
        json={"kind": "group", "title": "G", "participant_ids": [people.plus.id, people.free.id]},
        headers=people.priv.headers,
    )
    group = r.json()
    r = await client.post(
        "/api/v1/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code in (200, 201)
    priv = await server.connect(people.priv)
    free = await server.connect(people.free)
    plus = await server.connect(people.plus)
    await priv.send(type="typing", conversation_id=group["id"])
    await priv.drain()
    assert [f["type"] for f in besides_presence(await plus.drain())] == ["typing"]
    assert besides_presence(await free.drain()) == []


async def test_presence_reaches_people_who_share_a_conversation(client, people, server):
    conv = await dm(client, people.priv, people.free)
    await dm(client, people.priv, people.plus)
    r = await client.post(
        "/api/v1/blocks", json={"user_id": people.free.id}, headers=people.plus.headers
    )
    assert r.status_code in (200, 201)
    assert conv
    priv = await server.connect(people.priv)
    outsider = await server.connect(people.outsider)

    free = await server.connect(people.free)
    online = await priv.next("presence")
    assert online["data"]["user_id"] == people.free.id and online["data"]["status"] == "online"
    second = await server.connect(people.free)  # another device: no second announcement
    await free.close()
    await second.close()
    offline = await priv.next("presence")
    assert offline["data"]["user_id"] == people.free.id
    assert offline["data"]["status"] == "offline" and offline["data"]["last_seen_at"]
    assert [f for f in await priv.drain() if f["type"] == "presence"] == []
    assert await outsider.drain() == []

    # plus blocked free: plus is not told when free comes and goes
    plus = await server.connect(people.plus)
    await priv.next("presence")  # plus came online, which priv may know
    free = await server.connect(people.free)
    assert (await priv.next("presence"))["data"]["user_id"] == people.free.id
    assert [f for f in await plus.drain() if f["type"] == "presence"] == []
    r = await client.get(f"/api/v1/users/{people.free.id}", headers=people.priv.headers)
    assert r.json()["last_seen_at"] is not None
