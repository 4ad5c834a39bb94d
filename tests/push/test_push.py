"""A message to someone away reaches their devices as a push they can decrypt, with nothing of
the message in it; and nobody is pushed who should not be."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from py_vapid import jwt as vapid_jwt

from pigeon.push import service as push
from tests.realtime.conftest import Server
from tests.support.garbage import left_in_cycles
from tests.support.people import Person, dm, send
from tests.support.plans import reads_of_messages, whole_table_reads
from tests.support.push import Browser, PushService

API = "/api/v1"


async def subscribe(client: Any, who: Person, push_service: PushService, name: str) -> Browser:
    device = Browser()
    r = await client.post(
        f"{API}/push/subscriptions",
        json=device.subscription(push_service.endpoint(name)),
        headers=who.headers,
    )
    assert r.status_code == 201, r.text
    return device


async def test_an_away_recipient_gets_a_push_they_can_decrypt_and_it_carries_no_content(
    app, client, people, push_service: PushService
) -> None:
    key = (await client.get(f"{API}/push/key")).json()["public_key"]
    free = await subscribe(client, people.free, push_service, "free-phone")
    await subscribe(client, people.priv, push_service, "priv-laptop")  # the sender's own device
    conv = await dm(client, people.priv, people.free)
    probe = f"PROBE-{uuid.uuid4().hex}"
    await settled(app, await sent(client, people.priv, conv["id"], f"meet at the shop {probe}"))
    [got] = push_service.to("free-phone")
    # signed by the server's VAPID key, for this push service, not yet expired
    scheme, _, params = got.headers["authorization"].partition(" ")
    assert scheme == "vapid"
    parts = dict(p.split("=", 1) for p in params.split(","))
    assert parts["k"] == key
    # (ES256, checked as a push service does: the server's PyJWT does HS256 alone)
    claims = vapid_jwt.decode(parts["t"], key)
    assert claims["aud"] == push_service.origin
    assert claims["exp"] > time.time()
    assert claims["sub"] == "mailto:pigeon@example.org"
    assert urlsplit(push_service.endpoint("x")).netloc in claims["aud"]
    # encrypted for this device alone; what it says is which conversation, nothing more
    assert got.headers["content-encoding"] == "aes128gcm"
    payload = free.decrypt(got.body)
    assert json.loads(payload) == {"type": "message", "conversation_id": conv["id"]}
    for seen in (payload, got.body, json.dumps(got.headers).encode()):
        assert probe.encode() not in seen
        assert b"meet at the shop" not in seen
    assert int(got.headers["ttl"]) > 0
    # the sender's device heard nothing of their own message
    assert push_service.to("priv-laptop") == []
    devices = (await client.get(f"{API}/push/subscriptions", headers=people.free.headers)).json()
    assert devices[0]["last_success_at"] is not None


async def test_a_device_the_push_service_says_is_gone_is_forgotten(
    app, client, people, push_service: PushService
) -> None:
    await subscribe(client, people.free, push_service, "old-phone")
    await subscribe(client, people.free, push_service, "new-phone")
    push_service.answers["/push/old-phone"] = 410
    conv = await dm(client, people.priv, people.free)
    await settled(app, await sent(client, people.priv, conv["id"], "hello"))
    assert len(push_service.to("old-phone")) == len(push_service.to("new-phone")) == 1
    mine = await client.get(f"{API}/push/subscriptions", headers=people.free.headers)
    assert [d["endpoint"] for d in mine.json()] == [push_service.endpoint("new-phone")]
    # and the next message goes to the device that is left
    await settled(app, await sent(client, people.priv, conv["id"], "again"))
    assert len(push_service.to("old-phone")) == 1 and len(push_service.to("new-phone")) == 2


async def test_a_muted_conversation_pushes_nothing(app, client, people, push_service) -> None:
    phone = await subscribe(client, people.free, push_service, "free-phone")
    muted = await dm(client, people.priv, people.free)
    r = await client.patch(
        f"{API}/conversations/{muted['id']}", json={"muted": True}, headers=people.free.headers
    )
    assert r.status_code == 200, r.text
    other = await dm(client, people.plus, people.free)
    await sent(client, people.priv, muted["id"], "muted one")
    await settled(app, await sent(client, people.plus, other["id"], "not muted"))
    [got] = push_service.to("free-phone")
    assert json.loads(phone.decrypt(got.body))["conversation_id"] == other["id"]


async def test_a_message_request_not_yet_accepted_pushes_nothing(
    app, client, people, push_service
) -> None:
    await subscribe(client, people.free, push_service, "free-phone")
    request = await dm(client, people.priv, people.free, accepted=False)
    await settled(app, await sent(client, people.priv, request["id"], "may I?"))
    assert push_service.to("free-phone") == []


async def test_someone_connected_gets_no_push_and_the_others_do(
    app, client, people, push_service, server: Server
) -> None:
    await subscribe(client, people.free, push_service, "free-phone")
    await subscribe(client, people.free2, push_service, "free2-phone")
    group = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.free.id, people.free2.id], "kind": "group"},
        headers=people.priv.headers,
    )
    assert group.status_code == 201, group.text
    live = await server.connect(people.free)
    await settled(app, await sent(client, people.priv, group.json()["id"], "to the group"))
    await live.next("message.new")
    assert len(push_service.to("free2-phone")) == 1
    assert push_service.to("free-phone") == []


async def test_push_turned_off_sends_nothing_until_turned_on(
    app, client, people, push_service
) -> None:
    await subscribe(client, people.free, push_service, "free-phone")
    conv = await dm(client, people.priv, people.free)
    r = await client.put(f"{API}/push/settings", json={"push": False}, headers=people.free.headers)
    assert r.json() == {"push": False}
    await settled(app, await sent(client, people.priv, conv["id"], "while off"))
    assert push_service.to("free-phone") == []
    r = await client.put(f"{API}/push/settings", json={"push": True}, headers=people.free.headers)
    assert (await client.get(f"{API}/push/settings", headers=people.free.headers)).json() == {
        "push": True
    }
    await settled(app, await sent(client, people.priv, conv["id"], "back on"))
    assert len(push_service.to("free-phone")) == 1


async def test_a_conversation_is_pushed_at_most_once_in_the_coalescing_window(
    app, client, people, push_service
) -> None:
    app.state.runtime.settings.push_coalesce_seconds = 60.0
    phone = await subscribe(client, people.free, push_service, "free-phone")
    conv = await dm(client, people.priv, people.free)
    other = await dm(client, people.plus, people.free)
    await settled(app, await sent(client, people.priv, conv["id"], "first"))
    await settled(app, await sent(client, people.priv, conv["id"], "second, a moment later"))
    await settled(app, await sent(client, people.plus, other["id"], "another conversation"))
    told = [
        json.loads(phone.decrypt(g.body))["conversation_id"] for g in push_service.to("free-phone")
    ]
    assert told == [conv["id"], other["id"]]


async def sent(client: Any, who: Person, conv_id: int, body: str) -> int:
    r = await send(client, who, conv_id, body)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def settled(app: Any, message_id: int) -> None:
    """Wait until the sender has dealt with this message: its cursor moves only once every
    push of the pass has been answered, so what arrived by then is all that will."""
    db = app.state.runtime.dbs.app
    async with asyncio.timeout(10):
        while (await push.read_cursor(db, "messages") or 0) < message_id:
            await asyncio.sleep(0.02)


async def test_the_fan_out_reads_only_the_messages_above_its_cursor(app, client, people, backend):
    """It looks often, so on SQLite (no statistics) each look must read the new messages by
    id, not every live message: an index that put a column between deleted_at and the id
    made every look read them all."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL plans from its statistics")
    from pigeon.messaging.push_fanout import recipients_of

    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(4)]
    db = app.state.runtime.dbs.messaging
    with reads_of_messages(db) as seen:
        found, cursor = await recipients_of(db, ids[1])
    assert [m.id for m in found] == ids[2:] and cursor == ids[-1]
    assert [m.recipients for m in found] == [[people.free.id]] * 2
    assert whole_table_reads(db, seen, cursor=True) == []


async def test_the_fan_out_s_looks_leave_nothing_for_the_cycle_collector(
    app, client, people, push_service: PushService
) -> None:
    """It looks five times a second under load: what a look builds is freed as soon as it is
    done with, not left in reference cycles that pile up (and hold memory) until the next
    collection."""
    from pigeon.messaging.push_fanout import recipients_of

    await subscribe(client, people.free, push_service, "free-phone")
    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(3)]
    rt = app.state.runtime

    async def look() -> None:
        found, cursor = await recipients_of(rt.dbs.messaging, ids[0] - 1)
        assert [m.recipients for m in found] == [[people.free.id]] * 3 and cursor == ids[-1]
        async with rt.dbs.app.read() as session:
            [device] = await push.targets(session, [people.free.id, people.priv.id])
        assert device.user_id == people.free.id

    assert await left_in_cycles(look) == []
