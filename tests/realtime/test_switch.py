"""Switching messaging off, suspending someone, stopping the server: live connections end."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from tests.support.people import dm, send


async def test_switching_messaging_off_tells_and_closes_every_connection(client, people, server):
    conv = await dm(client, people.priv, people.free)
    socks = [
        await server.connect(people.free),
        await server.connect(people.free),
        await server.connect(people.priv),
    ]
    await send(client, people.priv, conv["id"], "last words")
    r = await client.put(
        "/api/v1/admin/settings/messaging", json={"enabled": False}, headers=people.admin.headers
    )
    assert r.status_code == 200
    for sock in socks:
        assert await sock.closed() == (4403, "messaging_disabled")
        types = [f["type"] for f in sock.frames]
        assert types[-1] == "messaging.disabled"
        assert "message.new" in types  # what was sent before still arrived first
    late = await server.connect(people.free, hello=False)
    assert await late.closed() == (4403, "messaging_disabled")
    r = await client.put(
        "/api/v1/admin/settings/messaging", json={"enabled": True}, headers=people.admin.headers
    )
    again = await server.connect(people.free)
    assert again is not None


async def test_a_suspended_users_connections_close_within_seconds(client, people, server):
    server.app.state.hub.check_interval = 0.2
    free = await server.connect(people.free)
    priv = await server.connect(people.priv)
    r = await client.patch(
        f"/api/v1/admin/users/{people.free.id}",
        json={"is_active": False},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    assert await free.closed(timeout=3) == (4403, "account_suspended")
    assert await priv.drain() is not None  # others stay connected


async def test_shutdown_closes_with_going_away(people, server):
    socks = [await server.connect(people.free), await server.connect(people.priv)]
    await server.app.state.hub.stop()  # what the server's shutdown hook runs
    for sock in socks:
        code, _ = await sock.closed()
        assert code == 1001


async def test_metrics_count_connections_deliveries_and_latency(client, people, server):
    def sample(text, name, **labels):  # type: ignore[no-untyped-def]
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    return s.value
        return 0.0

    before = (await client.get("/metrics")).text
    conv = await dm(client, people.priv, people.free)
    a = await server.connect(people.free)
    b = await server.connect(people.priv)
    await send(client, people.priv, conv["id"], "counted")
    await a.drain()
    await b.drain()
    after = (await client.get("/metrics")).text
    assert sample(after, "pigeon_live_connections") == sample(before, "pigeon_live_connections") + 2
    assert (
        sample(after, "pigeon_events_delivered_total", type="message.new")
        - sample(before, "pigeon_events_delivered_total", type="message.new")
    ) == 2
    assert (
        sample(after, "pigeon_delivery_latency_seconds_count")
        - sample(before, "pigeon_delivery_latency_seconds_count")
    ) == 2
    await a.close()
    await b.close()
    for _ in range(100):
        text = (await client.get("/metrics")).text
        if sample(text, "pigeon_live_connections") == sample(before, "pigeon_live_connections"):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("live connections were not counted down")
