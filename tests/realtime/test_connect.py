"""Connecting: who gets in, what they are told first, and how refusals look."""

from __future__ import annotations

import asyncio
import datetime as dt

import asyncpg
import pytest

from tests.conftest import POSTGRES_URL
from tests.support import pg
from tests.support.garbage import left_in_cycles
from tests.support.people import dm, send


async def test_hello_carries_unread_total_and_latest_message_id(client, people, server):
    conv = await dm(client, people.priv, people.free)
    sent = [(await send(client, people.priv, conv["id"], f"m{i}")).json() for i in range(3)]
    live = await server.connect(hello=False, token=people.free.token)
    hello = await live.recv()
    assert hello["type"] == "hello"
    assert hello["data"]["user_id"] == people.free.id
    assert hello["data"]["unread_total"] == 3
    assert hello["data"]["unread"] == {str(conv["id"]): 3}
    assert hello["data"]["latest_message_id"] == sent[-1]["id"]


async def test_bad_token_is_refused_with_4401(people, server):
    live = await server.connect(token="not-a-token", hello=False)
    assert await live.closed() == (4401, "invalid_token")


async def test_no_credentials_are_refused_with_4401(people, server):
    live = await server.connect(hello=False)
    assert await live.closed() == (4401, "not_authenticated")


async def test_expired_token_is_refused_with_4401(people, server, clock):
    clock.advance(dt.timedelta(hours=2))
    live = await server.connect(people.free, hello=False)
    assert await live.closed() == (4401, "invalid_token")


async def test_suspended_user_is_refused_with_4403(client, people, server):
    r = await client.patch(
        f"/api/v1/admin/users/{people.free.id}",
        json={"is_active": False},
        headers=people.admin.headers,
    )
    assert r.status_code == 200, r.text
    live = await server.connect(people.free, hello=False)
    code, _ = await live.closed()
    assert code in (4401, 4403)


async def test_messaging_off_refuses_with_4403(client, people, server):
    r = await client.put(
        "/api/v1/admin/settings/messaging", json={"enabled": False}, headers=people.admin.headers
    )
    assert r.status_code == 200
    live = await server.connect(people.free, hello=False)
    assert await live.closed() == (4403, "messaging_disabled")


async def test_a_database_that_refuses_connections_has_people_try_again(
    backend, client, people, server, postgres_dbs, caplog
):
    """The messaging database takes no connections for a while (an operator's doing, a
    restart): a request is answered 503 with Retry-After and a live connection is closed
    with 1013, so clients come back a moment later; once it takes them again, both work.
    The log says so in a line each time, with no traceback: it is an outage, not a fault."""
    if backend != "postgres":
        pytest.skip("PostgreSQL refusing connections")
    assert (await client.get("/api/v1/conversations", headers=people.free.headers)).is_success
    messages = postgres_dbs[1]
    admin = await asyncpg.connect(pg.dsn(POSTGRES_URL))
    try:
        await admin.execute(f'ALTER DATABASE "{messages}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", messages
        )
        while await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", messages
        ):
            await asyncio.sleep(0.02)
        r = await client.get("/api/v1/conversations", headers=people.free.headers)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "database_unavailable"
        assert r.headers["retry-after"] == "1"
        live = await server.connect(people.free, hello=False)
        assert await live.closed() == (1013, "database_unavailable")
        said = [r for r in caplog.records if r.name.startswith("pigeon")]
        assert any("not currently accepting connections" in r.getMessage() for r in said)
        assert [r.getMessage() for r in said if r.exc_info] == []
    finally:
        await admin.execute(f'ALTER DATABASE "{messages}" ALLOW_CONNECTIONS true')
        await admin.close()
    assert (await client.get("/api/v1/conversations", headers=people.free.headers)).is_success
    live = await server.connect(people.free)
    assert await live.drain() == []


async def test_ping_gets_pong_and_bad_frames_get_an_error(people, server):
    live = await server.connect(people.free)
    await live.ws.send("not json")
    assert (await live.recv())["data"]["code"] == "bad_frame"
    await live.send(type="dance")
    assert (await live.recv())["data"]["code"] == "unknown_frame"
    await live.send(type="read", conversation_id="x", message_id=1)
    assert (await live.recv())["data"]["code"] == "validation_error"
    assert await live.drain() == []


async def test_the_pages_cookie_session_signs_in_until_the_session_ends(app, people, server):
    from websockets.asyncio.client import connect

    from pigeon.auth import service as auth
    from pigeon.web.session import session_token
    from tests.realtime.conftest import Live
    from tests.support.people import PASSWORD

    rt = app.state.runtime
    async with rt.uow_scope() as uow:
        pair = await auth.login(rt, uow, login="free", password=PASSWORD, address="127.0.0.1")
    cookie = session_token(rt, people.free.id, pair.family_id)
    headers = {"Cookie": f"pigeon_session={cookie}"}
    origin = f"http://127.0.0.1:{server.port}"  # the page is one of the server's own
    live = Live(await connect(server.url(), additional_headers=headers, origin=origin))
    server.clients.append(live)
    hello = await live.recv()
    assert hello["type"] == "hello" and hello["data"]["user_id"] == people.free.id

    async with rt.uow_scope() as uow:
        await auth.revoke_family(uow, pair.family_id)  # signed out
    late = Live(await connect(server.url(), additional_headers=headers, origin=origin))
    server.clients.append(late)
    assert await late.closed() == (4401, "invalid_token")


async def test_hellos_and_badges_leave_nothing_for_the_cycle_collector(client, people, server):
    """Every connection's hello reads the badge (so does the badge route): with fifty thousand
    sockets connecting, each read leaving SQLAlchemy objects in a reference cycle kept the
    collector busy while messages waited."""
    await dm(client, people.priv, people.plus)

    async def hello_and_badge() -> None:
        live = await server.connect(people.plus)
        await live.close()
        r = await client.get("/api/v1/unread", headers=people.plus.headers)
        assert r.status_code == 200

    assert await left_in_cycles(hello_and_badge) == []


async def test_a_socket_opening_leaves_nothing_of_its_http_side_for_the_cycle_collector(
    people, server
) -> None:
    """The HTTP request a WebSocket opens with is dropped once the socket has the connection;
    with fifty thousand sockets connecting, each leaving it in a reference cycle (its parser
    calls back into it) kept the collector busy while messages waited."""
    import gc

    async def open_and_close() -> None:
        live = await server.connect(people.plus)
        await live.close()

    await open_and_close()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(20):
            await open_and_close()
        gc.collect()
        left = [
            type(o).__name__
            for o in gc.garbage
            if type(o).__module__.startswith(("uvicorn.protocols.http", "httptools"))
        ]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
