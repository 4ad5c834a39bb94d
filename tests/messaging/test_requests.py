"""Message requests: the first message from someone the recipient never wrote to waits in their
requests, with no reads, typing or presence shown either way, until they accept or reply."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from pigeon.core import migrate
from pigeon.core.db import Databases
from tests.realtime.conftest import Server, serving
from tests.support.people import dm, send

API = "/api/v1"


@pytest.fixture
async def server(app) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    async with serving(app) as live:
        yield live


async def conversations(client, who, **params: Any) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/conversations", params=params, headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def unread(client, who) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/unread", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def request_from(client, sender, recipient, body: str = "hello") -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """A first message from `sender` to `recipient`: (conversation id, message id)."""
    conv = await dm(client, sender, recipient, accepted=False)
    msg = await send(client, sender, conv["id"], body)
    assert msg.status_code == 201, msg.text
    return conv["id"], msg.json()["id"]


def reader(conv: dict[str, Any], user_id: int) -> dict[str, Any]:
    return next(p for p in conv["participants"] if p["id"] == user_id)


async def test_a_first_message_is_a_request_out_of_the_inbox_and_badge(client, people):
    a, b = people.priv, people.free
    conv_id, _ = await request_from(client, a, b)

    assert [c["id"] for c in await conversations(client, b)] == []
    requests = await conversations(client, b, requests="true")
    assert [(c["id"], c["request"], c["unread_count"]) for c in requests] == [(conv_id, True, 1)]
    assert await unread(client, b) == {"total": 0, "conversations": {}, "requests": 1}

    # the sender sees an ordinary conversation
    mine = await conversations(client, a)
    assert [(c["id"], c["request"]) for c in mine] == [(conv_id, False)]
    assert await conversations(client, a, requests="true") == []
    assert (await unread(client, a))["requests"] == 0


async def test_the_sender_never_sees_the_read_until_accepted(client, people):
    a, b = people.priv, people.free
    conv_id, msg_id = await request_from(client, a, b)

    r = await client.post(
        f"{API}/conversations/{conv_id}/read", json={"message_id": msg_id}, headers=b.headers
    )
    assert r.status_code == 200 and r.json()["message_id"] == msg_id
    seen_by_a = (await client.get(f"{API}/conversations/{conv_id}", headers=a.headers)).json()
    assert reader(seen_by_a, b.id)["last_read_message_id"] == 0
    assert reader(seen_by_a, b.id)["last_seen_at"] is None

    r = await client.post(f"{API}/conversations/{conv_id}/accept", headers=b.headers)
    assert r.status_code == 200 and r.json()["request"] is False
    seen_by_a = (await client.get(f"{API}/conversations/{conv_id}", headers=a.headers)).json()
    assert reader(seen_by_a, b.id)["last_read_message_id"] == msg_id
    assert [c["id"] for c in await conversations(client, b)] == [conv_id]
    assert (await unread(client, b))["requests"] == 0

    # accepting again changes nothing; declining what is no request is refused
    r = await client.post(f"{API}/conversations/{conv_id}/accept", headers=b.headers)
    assert r.status_code == 200
    r = await client.post(f"{API}/conversations/{conv_id}/decline", headers=b.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_request"


async def test_accepting_counts_the_unread_on_the_badge(client, people):
    a, b = people.priv, people.free
    conv_id, _ = await request_from(client, a, b)
    await send(client, a, conv_id, "are you there?")
    assert (await unread(client, b))["total"] == 0
    await client.post(f"{API}/conversations/{conv_id}/accept", headers=b.headers)
    assert await unread(client, b) == {
        "total": 2,
        "conversations": {str(conv_id): 2},
        "requests": 0,
    }


async def test_a_reply_accepts(client, people):
    a, b = people.priv, people.free
    conv_id, _ = await request_from(client, a, b)
    r = await send(client, b, conv_id, "hi back")
    assert r.status_code == 201
    assert [(c["id"], c["request"]) for c in await conversations(client, b)] == [(conv_id, False)]
    assert await conversations(client, b, requests="true") == []
    await send(client, a, conv_id, "great")
    assert (await unread(client, b))["total"] == 1


async def test_a_reaction_accepts_like_a_reply(client, people):
    a, b = people.priv, people.free
    conv_id, msg_id = await request_from(client, a, b)
    r = await client.post(
        f"{API}/messages/{msg_id}/reactions", json={"emoji": "👍"}, headers=b.headers
    )
    assert r.status_code == 201
    assert [(c["id"], c["request"]) for c in await conversations(client, b)] == [(conv_id, False)]


async def test_decline_hides_it_and_the_next_message_brings_it_back_as_a_request(client, people):
    a, b = people.priv, people.free
    conv_id, _ = await request_from(client, a, b, "buy my stuff")
    r = await client.post(f"{API}/conversations/{conv_id}/decline", headers=b.headers)
    assert r.status_code == 204
    assert await conversations(client, b, requests="true") == []
    assert await conversations(client, b) == []
    assert (await unread(client, b))["requests"] == 0
    # the sender is not told: their side is as before
    assert [c["id"] for c in await conversations(client, a)] == [conv_id]

    await send(client, a, conv_id, "second try")
    back = await conversations(client, b, requests="true")
    assert [(c["id"], c["request"]) for c in back] == [(conv_id, True)]
    history = await client.get(f"{API}/conversations/{conv_id}/messages", headers=b.headers)
    assert [m["body"] for m in history.json()] == ["second try"]
    assert await conversations(client, b) == []


async def test_decline_and_block_or_report(client, people):
    a, b = people.priv, people.free
    conv_id, _ = await request_from(client, a, b)
    r = await client.post(
        f"{API}/conversations/{conv_id}/decline",
        json={"block": True, "report": {"reason": "spam", "details": "ads"}},
        headers=b.headers,
    )
    assert r.status_code == 204
    blocked = (await client.get(f"{API}/blocks", headers=b.headers)).json()
    assert [u["id"] for u in blocked] == [a.id]
    r = await send(client, a, conv_id, "again")
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    queue = (await client.get(f"{API}/admin/reports", headers=people.admin.headers)).json()
    assert [(q["reason"], q["message_id"]) for q in queue] == [("spam", None)]

    r = await client.post(
        f"{API}/conversations/{conv_id}/decline",
        json={"report": {"reason": "not a reason"}},
        headers=b.headers,
    )
    assert r.status_code == 422


async def test_someone_who_wrote_to_the_starter_before_gets_no_request(client, people):
    a, b = people.priv, people.free
    group = await client.post(
        f"{API}/conversations",
        json={"kind": "group", "participant_ids": [b.id], "title": "Book club"},
        headers=a.headers,
    )
    assert group.status_code == 201
    # groups are never requests
    assert [c["id"] for c in await conversations(client, b)] == [group.json()["id"]]
    await send(client, b, group.json()["id"], "hello all")

    conv_id, _ = await request_from(client, a, b)
    assert conv_id in [c["id"] for c in await conversations(client, b)]
    assert await conversations(client, b, requests="true") == []


async def test_live_frames_while_a_request_is_pending(client, people, server, clock):
    clock.freeze()
    a, b = people.priv, people.free
    a_ws = await server.connect(a)
    conv = await dm(client, a, b, accepted=False)
    b_ws = await server.connect(b)
    assert [f["type"] for f in await a_ws.drain()] == ["conversation.updated"]  # no presence

    msg = (await send(client, a, conv["id"], "hello")).json()
    got_b = await b_ws.drain()
    assert [f["type"] for f in got_b] == ["message.new"]  # no badge: it is not in the inbox
    assert got_b[0]["data"]["request"] is True
    got_a = await a_ws.drain()
    assert [f["type"] for f in got_a] == ["message.new"] and "request" not in got_a[0]["data"]

    # no typing either way, no receipt for the sender
    await a_ws.send(type="typing", conversation_id=conv["id"])
    await b_ws.send(type="typing", conversation_id=conv["id"])
    await b_ws.send(type="read", conversation_id=conv["id"], message_id=msg["id"])
    assert [f["type"] for f in await b_ws.drain()] == ["unread"]  # own devices only
    assert await a_ws.drain() == []

    # accepting: the read shows, and typing goes through
    r = await client.post(f"{API}/conversations/{conv['id']}/accept", headers=b.headers)
    assert r.status_code == 200
    receipts = await a_ws.drain()
    assert [(f["type"], f["data"]["message_id"]) for f in receipts] == [("receipt.read", msg["id"])]
    clock.advance(dt.timedelta(seconds=5))
    await b_ws.send(type="typing", conversation_id=conv["id"])
    await b_ws.drain()
    assert [f["type"] for f in await a_ws.drain()] == ["typing"]


async def test_participants_from_before_the_migration_are_accepted(tmp_path: Path):
    dbs = Databases(
        f"sqlite+aiosqlite:///{tmp_path}/app.db", f"sqlite+aiosqlite:///{tmp_path}/messages.db"
    )
    try:
        await migrate.upgrade(dbs.messaging, "572b5768e9c1")
        async with dbs.messaging.write_engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO conversation (id, kind, created_by, direct_key, created_at, "
                    "updated_at) VALUES (1, 'direct', 1, '1:2', '2026-01-01', '2026-01-01')"
                )
            )
            for uid in (1, 2):
                await conn.execute(
                    text(
                        "INSERT INTO participant (conversation_id, user_id, role, display_name, "
                        "joined_at, last_read_message_id, unread_count) "
                        "VALUES (1, :uid, 'member', '', '2026-01-01', 0, 0)"
                    ),
                    {"uid": uid},
                )
        await migrate.upgrade(dbs.messaging)
        async with dbs.messaging.write_engine.connect() as conn:
            rows = (await conn.execute(text("SELECT request_pending FROM participant"))).all()
        assert [bool(r[0]) for r in rows] == [False, False]
    finally:
        await dbs.dispose()


async def test_hello_counts_requests_and_a_resume_flags_them(client, people, server):
    a, b = people.priv, people.free
    conv_id, msg_id = await request_from(client, a, b)
    live = await server.connect(b, hello=False)
    hello = await live.recv()
    assert hello["data"]["requests"] == 1 and hello["data"]["unread_total"] == 0
    await live.send(type="resume", last_message_id=msg_id - 1)
    replayed = [f for f in await live.drain() if f["type"] == "message.new"]
    assert [(f["id"], f["data"]["request"]) for f in replayed] == [(msg_id, True)]

    await client.post(f"{API}/conversations/{conv_id}/accept", headers=b.headers)
    again = await server.connect(b)  # a connection replays each message once: a new one
    await again.send(type="resume", last_message_id=msg_id - 1)
    replayed = [f for f in await again.drain() if f["type"] == "message.new"]
    assert [f["id"] for f in replayed] == [msg_id] and "request" not in replayed[0]["data"]
