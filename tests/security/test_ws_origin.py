"""L3: a socket signed in by the page's cookie must come from one of this server's own pages
(or an origin the operator allows); tokens and tickets are not ambient and need no such check."""

from __future__ import annotations

import pytest
from websockets.asyncio.client import connect

from pigeon.auth import service as auth
from pigeon.web.session import session_token
from tests.realtime import conftest as realtime
from tests.realtime.conftest import Live
from tests.support.people import PASSWORD

server = realtime.server  # the live server fixture

EVIL = "https://evil.example"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"allowed_origins": "https://chat.example.org:8443, "})


async def session_cookie(app, username: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The cookie a browser holds after signing in on the pages."""
    rt = app.state.runtime
    async with rt.uow_scope() as uow:
        pair = await auth.login(rt, uow, login=username, password=PASSWORD, address="127.0.0.1")
    cookie = session_token(rt, pair.user.id, pair.family_id)
    return {"Cookie": f"pigeon_session={cookie}"}


async def open_socket(server, url: str, **kwargs) -> Live:  # type: ignore[no-untyped-def]
    live = Live(await connect(url, **kwargs))
    server.clients.append(live)
    return live


async def test_a_cookie_from_another_sites_page_is_refused(app, people, server):
    headers = await session_cookie(app, "free")
    for origin in (EVIL, f"https://127.0.0.1:{server.port}", "null"):
        live = await open_socket(server, server.url(), additional_headers=headers, origin=origin)
        assert await live.closed() == (4403, "bad_origin"), origin


async def test_a_cookie_without_an_origin_is_refused(app, people, server):
    live = await open_socket(
        server, server.url(), additional_headers=await session_cookie(app, "free")
    )
    assert await live.closed() == (4403, "bad_origin")


async def test_a_cookie_from_our_own_page_or_an_allowed_origin_signs_in(app, people, server):
    headers = await session_cookie(app, "free")
    for origin in (f"http://127.0.0.1:{server.port}", "https://chat.example.org:8443"):
        live = await open_socket(server, server.url(), additional_headers=headers, origin=origin)
        hello = await live.recv()
        assert hello["type"] == "hello" and hello["data"]["user_id"] == people.free.id


async def test_tokens_and_tickets_do_not_depend_on_the_origin(client, people, server):
    live = await open_socket(server, server.url(people.free.token), origin=EVIL)
    assert (await live.recv())["data"]["user_id"] == people.free.id
    bearer = await open_socket(
        server, server.url(), additional_headers=people.free.headers, origin=EVIL
    )
    assert (await bearer.recv())["data"]["user_id"] == people.free.id
    r = await client.post("/api/v1/ws/ticket", headers=people.free.headers)
    url = server.url() + "?ticket=" + r.json()["ticket"]
    ticketed = await open_socket(server, url, origin=EVIL)
    assert (await ticketed.recv())["data"]["user_id"] == people.free.id
