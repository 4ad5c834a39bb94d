"""Catch-up: a client that was away gets exactly what it missed, in order, then live events."""

from __future__ import annotations

import asyncio
import datetime as dt

from pigeon.messaging import catchup
from tests.support.people import access_token, dm, send


def new_ids(frames):  # type: ignore[no-untyped-def]
    return [f["id"] for f in frames if f["type"] == "message.new"]


async def test_resume_replays_what_was_missed_in_order_then_goes_live(client, people, server):
    conv = await dm(client, people.priv, people.free)
    other = await dm(client, people.priv, people.plus)
    first = (await send(client, people.priv, conv["id"], "one")).json()
    missed = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(3)]
    await send(client, people.priv, other["id"], "not for free")
    mine = (await send(client, people.free, conv["id"], "my own, from another device")).json()

    live = await server.connect(people.free)
    await live.send(type="resume", last_message_id=first["id"])
    replayed = [f for f in await live.drain() if f["type"] == "message.new"]
    assert [f["id"] for f in replayed] == [*missed, mine["id"]]
    assert [f["data"]["body"] for f in replayed] == [
        "m0",
        "m1",
        "m2",
        "my own, from another device",
    ]

    after = (await send(client, people.priv, conv["id"], "live again")).json()
    assert new_ids(await live.drain()) == [after["id"]]


async def test_resume_skips_what_this_connection_already_got(client, people, server):
    conv = await dm(client, people.priv, people.free)
    start = (await send(client, people.priv, conv["id"], "seen before")).json()
    live = await server.connect(people.free)
    ids = [(await send(client, people.priv, conv["id"], f"x{i}")).json()["id"] for i in range(2)]
    assert new_ids(await live.drain()) == ids
    await live.send(type="resume", last_message_id=start["id"])
    assert new_ids(await live.drain()) == []


def renew_tokens(app, people):  # type: ignore[no-untyped-def]
    for person in people.values():
        person.token = access_token(app.state.runtime, person.id, person.family_id)


async def test_resume_respects_retention_and_group_blocks(app, client, people, server, clock):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "long ago")
    clock.advance(dt.timedelta(days=40))  # outside a free member's 30-day window
    renew_tokens(app, people)
    recent = (await send(client, people.priv, conv["id"], "recent")).json()
    r = await client.post(
        "/api/v1/conversations",
        json={"kind": "group", "title": "G", "participant_ids": [people.free.id, people.plus.id]},
        headers=people.priv.headers,
    )
    group = r.json()
    r = await client.post(
        "/api/v1/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code in (200, 201)
    await send(client, people.priv, group["id"], "hidden from free")
    from_plus = (await send(client, people.plus, group["id"], "visible")).json()

    live = await server.connect(people.free)
    await live.send(type="resume", last_message_id=0)
    assert new_ids(await live.drain()) == [recent["id"], from_plus["id"]]


async def test_no_gap_and_no_duplicate_when_messages_arrive_during_the_replay(
    client, people, server, monkeypatch
):
    monkeypatch.setattr(catchup, "PAGE", 4)  # several pages, so sends land between them
    conv = await dm(client, people.priv, people.free)
    base = (await send(client, people.priv, conv["id"], "base")).json()["id"]
    for i in range(10):
        await send(client, people.priv, conv["id"], f"before {i}")
    live = await server.connect(people.free)

    async def sender(who, n):  # type: ignore[no-untyped-def]
        out = []
        for i in range(n):
            r = await send(client, who, conv["id"], f"during {who.username} {i}")
            out.append(r.json()["id"])
        return out

    await live.send(type="resume", last_message_id=base)
    sent = await asyncio.gather(sender(people.priv, 15), sender(people.free, 15))
    got = new_ids(await live.drain())
    expected = sorted(set(range(base + 1, base + 11)) | set(sent[0]) | set(sent[1]))
    assert len(got) == len(set(got)), "duplicates"
    assert sorted(got) == expected, "gaps"
    replayed = set(range(base + 1, base + 11))
    assert [i for i in got if i in replayed] == sorted(replayed)  # the replay is in order


async def test_resume_on_connect_replays_before_anything_live(client, people, server):
    from websockets.asyncio.client import connect

    from tests.realtime.conftest import Live

    conv = await dm(client, people.priv, people.free)
    base = (await send(client, people.priv, conv["id"], "base")).json()["id"]
    missed = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(5)]

    async def keep_sending() -> list[int]:
        return [
            (await send(client, people.priv, conv["id"], f"l{i}")).json()["id"] for i in range(15)
        ]

    sending = asyncio.create_task(keep_sending())
    ws = await connect(server.url(people.free.token) + f"&last_message_id={base}")
    live = Live(ws)
    server.clients.append(live)
    assert (await live.recv())["type"] == "hello"
    more = await sending
    got = new_ids(await live.drain())
    assert got == [*missed, *more]  # in order, nothing twice, nothing missing
