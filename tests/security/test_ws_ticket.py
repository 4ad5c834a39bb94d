"""L8: access tokens stay out of URLs and logs. The WebSocket takes a single-use ticket that
expires within seconds, in any process; the server's log never shows `token` or `ticket`."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from pigeon.server import RedactSecrets
from tests.conftest import REDIS_URL
from tests.realtime import conftest as realtime
from tests.realtime.conftest import Live, Server, serving
from tests.security.test_ws_origin import session_cookie
from tests.support.serve import pigeon_serve

server = realtime.server  # the live server fixture


async def ticket_for(client, person) -> str:  # type: ignore[no-untyped-def]
    r = await client.post("/api/v1/ws/ticket", headers=person.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires_in"] == 30
    return str(body["ticket"])


async def open_socket(server: Server, ticket: str) -> Live:
    live = Live(await connect(f"{server.url()}?ticket={ticket}"))
    server.clients.append(live)
    return live


async def test_a_ticket_opens_one_connection_once(client, people, server):
    ticket = await ticket_for(client, people.free)
    live = await open_socket(server, ticket)
    hello = await live.recv()
    assert hello["type"] == "hello" and hello["data"]["user_id"] == people.free.id
    again = await open_socket(server, ticket)
    assert await again.closed() == (4401, "invalid_ticket")


async def test_a_ticket_ends_with_the_sign_in_that_asked_for_it(app, client, people, server):
    from pigeon.auth import service as auth

    ticket = await ticket_for(client, people.free)
    async with app.state.runtime.uow_scope() as uow:
        await auth.revoke_family(uow, people.free.family_id)  # signed out, everywhere
    live = await open_socket(server, ticket)
    assert await live.closed() == (4401, "invalid_ticket")


async def test_an_expired_ticket_is_refused(client, people, server, clock):
    ticket = await ticket_for(client, people.free)
    clock.advance(dt.timedelta(seconds=31))
    live = await open_socket(server, ticket)
    assert await live.closed() == (4401, "invalid_ticket")


async def test_only_a_ticket_is_a_ticket(client, people, server):
    for fake in (people.free.token, "not-a-ticket", ""):
        live = await open_socket(server, fake)
        assert await live.closed() == (4401, "invalid_ticket")
    # and a ticket is nothing else: not an access token, for the socket or the API
    ticket = await ticket_for(client, people.free)
    live = await server.connect(token=ticket, hello=False)
    assert await live.closed() == (4401, "invalid_token")
    r = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {ticket}"})
    assert r.status_code == 401


async def test_a_ticket_is_for_someone_signed_in_and_not_for_other_sites(app, client, people):
    r = await client.post("/api/v1/ws/ticket")
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"
    # the page's cookie alone (what another site's form would carry) is not enough
    r = await client.post("/api/v1/ws/ticket", headers=await session_cookie(app, "free"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_failed"


async def test_the_ticket_endpoint_is_documented(client):
    spec = (await client.get("/openapi.json")).json()
    op = spec["paths"]["/api/v1/ws/ticket"]["post"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][name]["properties"]) == {"ticket", "expires_in"}
    assert "ticket" in op["description"]


# --- across processes: Redis remembers the tickets that were used ---


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    if "shared_redis" not in request.fixturenames:
        return settings
    if not REDIS_URL:
        pytest.skip("PIGEON_TEST_REDIS_URL is not set")
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    return settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.fixture
def shared_redis() -> None:
    """Marks a test whose app uses Redis (see `settings`)."""


async def test_a_ticket_is_spent_in_every_process(
    shared_redis, settings, client, people, server, clock
):
    from pigeon.app import create_app

    other_app = create_app(
        settings, clock=clock
    )  # a second process: its own runtime and hub, same Redis
    async with other_app.router.lifespan_context(other_app), serving(other_app) as other:
        ticket = await ticket_for(client, people.free)
        live = await open_socket(other, ticket)
        assert (await live.recv())["data"]["user_id"] == people.free.id
        here = await open_socket(server, ticket)
        assert await here.closed() == (4401, "invalid_ticket")
        there = await open_socket(other, ticket)
        assert await there.closed() == (4401, "invalid_ticket")


# --- the server's log ---


def test_the_log_filter_blanks_tokens_and_tickets():
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", "/api/v1/ws?last_message_id=3&token=abc.def&TICKET=xyz", "1.1", 101),
        None,
    )
    assert RedactSecrets().filter(record)
    assert record.getMessage() == (
        '1.2.3.4:5 - "GET /api/v1/ws?last_message_id=3&token=[redacted]&TICKET=[redacted]'
        ' HTTP/1.1" 101'
    )


def test_the_log_filter_blanks_invitation_links():
    token = "Lx6tj7xeAau-kaToa-f3gmHYrOr2MWJWrejPnOPXrpE"
    for path, shown in (
        (f"/register?invitation={token}", "/register?invitation=[redacted]"),
        (f"/invitations/{token}", "/invitations/[redacted]"),
        (f"/api/v1/invitations/verify/{token}", "/api/v1/invitations/verify/[redacted]"),
        ("/api/v1/invitations/12/revoke", "/api/v1/invitations/12/revoke"),
    ):
        assert RedactSecrets.redact(f'"GET {path} HTTP/1.1" 200') == f'"GET {shown} HTTP/1.1" 200'


def test_pigeon_serve_never_logs_a_token_or_a_ticket(tmp_path: Path):
    secrets = ("SECRET-TOKEN-1", "SECRET-TICKET-2", "SECRET-TOKEN-3")
    with (
        (tmp_path / "server.log").open("wb") as log,
        pigeon_serve(tmp_path / "data", {"PIGEON_TUNE_GC": "false"}, log) as base,
    ):
        httpx.get(f"{base}/healthz?token={secrets[2]}", timeout=5)

        async def knock() -> None:
            for query in (f"token={secrets[0]}", f"ticket={secrets[1]}"):
                ws_base = base.replace("http://", "ws://")
                async with connect(f"{ws_base}/api/v1/ws?{query}") as ws:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(ws.recv(), 5)

        asyncio.run(knock())
    text = (tmp_path / "server.log").read_text()
    assert "/api/v1/ws?token=[redacted]" in text and "?ticket=[redacted]" in text, text
    assert "/healthz?token=[redacted]" in text, text
    for secret in secrets:
        assert secret not in text
