"""Keeping conversations one's own way: mute, pin, archive, mark unread, remove for oneself.
All of it for the person alone; the others see no change."""

from __future__ import annotations

from tests.realtime import conftest as realtime
from tests.support.people import Person, dm, send

API = "/api/v1"
server = realtime.server  # the fixture: the test's app on a real socket, for WebSockets


async def patch(client, who: Person, conv_id: int, **fields):  # type: ignore[no-untyped-def]
    return await client.patch(f"{API}/conversations/{conv_id}", json=fields, headers=who.headers)


async def listed(client, who: Person, **params) -> list[int]:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/conversations", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return [c["id"] for c in r.json()]


async def unread(client, who: Person) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return (await client.get(f"{API}/unread", headers=who.headers)).json()  # type: ignore[no-any-return]


async def test_a_muted_conversation_keeps_its_count_but_leaves_the_badge(client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "one")
    await send(client, people.priv, conv["id"], "two")
    assert (await unread(client, people.free))["total"] == 2
    r = await patch(client, people.free, conv["id"], muted=True)
    assert r.status_code == 200 and r.json()["muted"] is True and r.json()["unread_count"] == 2
    assert await unread(client, people.free) == {
        "total": 0,
        "conversations": {str(conv["id"]): 2},
        "requests": 0,
    }
    await send(client, people.priv, conv["id"], "three")
    assert (await unread(client, people.free))["total"] == 0
    theirs = (
        await client.get(f"{API}/conversations/{conv['id']}", headers=people.priv.headers)
    ).json()
    assert theirs["muted"] is False  # for the person alone


async def test_muted_sends_do_not_move_the_live_badge(client, people, server):
    conv = await dm(client, people.priv, people.free)
    live = await server.connect(people.free)
    await patch(client, people.free, conv["id"], muted=True)
    assert (await live.next("unread"))["data"] == {
        "total": 0,
        "conversation_id": conv["id"],
        "count": 0,
    }
    await send(client, people.priv, conv["id"], "quiet please")
    await live.next("message.new")
    frame = await live.next("unread")  # beside the message: the total it leaves
    assert frame["data"]["total"] == 0 and frame["data"]["conversation_id"] == conv["id"]


async def test_pinned_ones_lead_the_list_and_three_is_the_most(client, people):
    convs = [
        await dm(client, people.plus, p)
        for p in (people.free, people.free2, people.priv, people.manager)
    ]
    for c in convs:
        await send(client, people.plus, c["id"], "hello")
    newest_first = [c["id"] for c in reversed(convs)]
    assert await listed(client, people.plus) == newest_first
    assert (await patch(client, people.plus, convs[0]["id"], pinned=True)).json()["pinned"] is True
    assert (await listed(client, people.plus))[0] == convs[0]["id"]
    await patch(client, people.plus, convs[1]["id"], pinned=True)
    await patch(client, people.plus, convs[2]["id"], pinned=True)
    r = await patch(client, people.plus, convs[3]["id"], pinned=True)
    assert r.status_code == 409 and r.json()["error"]["code"] == "too_many_pinned"
    assert (await listed(client, people.plus))[:3] == [
        convs[2]["id"],
        convs[1]["id"],
        convs[0]["id"],
    ]
    # paging: the pinned ones lead the first page and do not come again
    r = await client.get(f"{API}/conversations", params={"limit": 1}, headers=people.plus.headers)
    first = [c["id"] for c in r.json()]
    assert first == [convs[2]["id"], convs[1]["id"], convs[0]["id"], convs[3]["id"]]
    assert "X-Next-Before" in r.headers


async def test_an_archived_conversation_waits_for_something_new(client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "old")
    r = await patch(client, people.free, conv["id"], archived=True)
    assert r.json()["archived"] is True
    assert conv["id"] not in await listed(client, people.free)
    assert await listed(client, people.free, archived="true") == [conv["id"]]
    assert conv["id"] in await listed(client, people.priv)  # the other person keeps it
    await send(client, people.priv, conv["id"], "news")
    assert conv["id"] in await listed(client, people.free)
    assert await listed(client, people.free, archived="true") == []


async def test_marking_unread_and_read(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "read me")).json()
    await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": msg["id"]},
        headers=people.free.headers,
    )
    r = await patch(client, people.free, conv["id"], unread=True)
    assert r.json()["marked_unread"] is True
    # reading it again clears the mark, although nothing new was read
    r = await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": msg["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 200
    got = (
        await client.get(f"{API}/conversations/{conv['id']}", headers=people.free.headers)
    ).json()
    assert got["marked_unread"] is False
    await send(client, people.priv, conv["id"], "more")
    r = await patch(client, people.free, conv["id"], unread=False)  # "mark as read"
    assert r.json()["unread_count"] == 0 and (await unread(client, people.free))["total"] == 0


async def test_removing_a_conversation_for_oneself(client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "before")
    r = await client.delete(f"{API}/conversations/{conv['id']}", headers=people.free.headers)
    assert r.status_code == 204
    assert conv["id"] not in await listed(client, people.free)
    history = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers
    )
    assert history.json() == []
    found = await client.get(
        f"{API}/messages/search", params={"q": "before"}, headers=people.free.headers
    )
    assert found.json() == []
    theirs = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    assert [m["body"] for m in theirs.json()] == ["before"]  # the other person keeps it
    await send(client, people.priv, conv["id"], "after")
    assert conv["id"] in await listed(client, people.free)
    history = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers
    )
    assert [m["body"] for m in history.json()] == ["after"]


async def test_only_members_organise_and_fields_are_strict(client, people):
    conv = await dm(client, people.priv, people.free)
    r = await patch(client, people.free2, conv["id"], muted=True)
    assert r.status_code == 404
    r = await client.delete(f"{API}/conversations/{conv['id']}", headers=people.free2.headers)
    assert r.status_code == 404
    r = await patch(client, people.free, conv["id"], muted="yes")
    assert r.status_code == 422
