"""Hiding one's last seen and read receipts: then nobody sees them, and (both ways, as in
WhatsApp) one sees nobody's — in the API, the conversation list and the live frames."""

from __future__ import annotations

from tests.realtime import conftest as realtime
from tests.support.people import Person, dm, send

API = "/api/v1"
server = realtime.server


async def set_privacy(client, who: Person, **values: bool):  # type: ignore[no-untyped-def]
    r = await client.put(f"{API}/users/{who.id}", json=values, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def participant(client, viewer: Person, conv_id: int, user: Person) -> dict:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/conversations/{conv_id}", headers=viewer.headers)
    assert r.status_code == 200, r.text
    return next(p for p in r.json()["participants"] if p["id"] == user.id)


async def test_the_settings_are_ones_own(client, people):
    me = await set_privacy(client, people.free, show_last_seen=False)
    assert me["show_last_seen"] is False and me["read_receipts"] is True
    r = await client.put(
        f"{API}/users/{people.free.id}", json={"read_receipts": False}, headers=people.admin.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_profile"
    r = await client.put(
        f"{API}/users/{people.free.id}", json={"read_receipts": "no"}, headers=people.free.headers
    )
    assert r.status_code == 422
    other = await client.get(f"{API}/users/{people.free.id}", headers=people.priv.headers)
    assert "show_last_seen" not in other.json()  # nobody else's business


async def test_hidden_last_seen_works_both_ways(client, people, server):
    conv = await dm(client, people.priv, people.free)
    # both have been online once (each sees the other go)
    priv = await server.connect(people.priv)
    free = await server.connect(people.free)
    await free.close()
    while (await priv.next("presence"))["data"]["status"] != "offline":
        pass
    free = await server.connect(people.free)
    await priv.close()
    while (await free.next("presence"))["data"]["status"] != "offline":
        pass
    await free.close()
    for viewer, user in ((people.priv, people.free), (people.free, people.priv)):
        r = await client.get(f"{API}/users/{user.id}", headers=viewer.headers)
        assert r.json()["last_seen_at"] is not None
    await set_privacy(client, people.free, show_last_seen=False)
    for viewer, user in ((people.priv, people.free), (people.free, people.priv)):
        r = await client.get(f"{API}/users/{user.id}", headers=viewer.headers)
        assert r.json()["last_seen_at"] is None
        assert (await participant(client, viewer, conv["id"], user))["last_seen_at"] is None
    mine = await client.get(f"{API}/users/{people.free.id}", headers=people.free.headers)
    assert mine.json()["last_seen_at"] is not None  # one's own, still

    # and no live presence either way
    priv = await server.connect(people.priv)
    free = await server.connect(people.free)
    await send(client, people.priv, conv["id"], "hello")  # something that surely arrives
    await free.next("message.new")
    assert [f for f in await priv.drain() if f["type"] == "presence"] == []
    assert [f for f in await free.drain() if f["type"] == "presence"] == []
    await set_privacy(client, people.free, show_last_seen=True)
    await free.close()
    offline = await priv.next("presence")
    assert offline["data"]["user_id"] == people.free.id


async def test_hidden_read_receipts_work_both_ways(client, people, server):
    conv = await dm(client, people.priv, people.free)
    first = (await send(client, people.priv, conv["id"], "read me")).json()
    await set_privacy(client, people.free, read_receipts=False)
    priv = await server.connect(people.priv)
    r = await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": first["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 200
    reply = (await send(client, people.free, conv["id"], "ok")).json()
    await priv.next("message.new")
    assert [f for f in await priv.drain() if f["type"] == "receipt.read"] == []
    assert (await participant(client, people.priv, conv["id"], people.free))[
        "last_read_message_id"
    ] == 0
    # free still has their own place, and sees nobody's either
    r = await client.get(f"{API}/conversations/{conv['id']}", headers=people.free.headers)
    assert r.json()["last_read_message_id"] >= first["id"]
    await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": reply["id"]},
        headers=people.priv.headers,
    )
    assert (await participant(client, people.free, conv["id"], people.priv))[
        "last_read_message_id"
    ] == 0
    # turned on again: reads show from then on
    await set_privacy(client, people.free, read_receipts=True)
    later = (await send(client, people.priv, conv["id"], "and now?")).json()
    await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": later["id"]},
        headers=people.free.headers,
    )
    receipt = await priv.next("receipt.read")
    assert receipt["data"]["user_id"] == people.free.id
    assert receipt["data"]["message_id"] == later["id"]
