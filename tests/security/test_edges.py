"""What arrives at the edge: CSRF on cookie-authenticated writes, bounded inputs, limits on
every write a person could flood, and pages that a link from elsewhere cannot make act.

Findings L2, L4, L6 (edits, starts, reports), L10, and bodies that show nothing.
"""

from __future__ import annotations

import pytest

from pigeon.app import create_app
from tests.support.people import dm, send
from tests.web.support import browser, csrf_of, sign_in, signed_in

API = "/api/v1"


async def test_a_cookie_session_needs_the_csrf_header_whatever_else_is_sent(app, people) -> None:
    async with signed_in(app, "priv") as c:
        page = await c.get("/messages")
        token = csrf_of(page)
        body = {"participant_ids": [people.free.id]}
        for headers in (
            {},
            {"Authorization": "Basic cHJpdjpwYXNzd29yZA=="},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer"},
            {"Authorization": "bearer \t"},
        ):
            r = await c.post(f"{API}/conversations", json=body, headers=headers)
            assert r.status_code == 403, (headers, r.text)
            assert r.json()["error"]["code"] == "csrf_failed"
        # the session cookie in a second Cookie header is still a cookie session
        cookie = c.cookies.get("pigeon_session")
        async with browser(app) as other:
            r = await other.post(
                f"{API}/conversations",
                json=body,
                headers=[("cookie", "tz=UTC"), ("cookie", f"pigeon_session={cookie}")],
            )
            assert r.status_code in (401, 403) and r.json()["error"]["code"] in (
                "csrf_failed",
                "not_authenticated",
            )
        r = await c.post(f"{API}/conversations", json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 201
        # a real bearer token is not a cookie session: no CSRF needed
        r = await c.post(
            f"{API}/conversations",
            json={"participant_ids": [people.plus.id]},
            headers=people.priv.headers,
        )
        assert r.status_code == 201


@pytest.mark.parametrize(
    "method,path,payload",
    [
        ("GET", "/conversations?before=9999-12-31T23:59:59-23:59", None),
        ("GET", "/conversations?before=0001-01-01T00:00:00%2B23:59", None),
        ("GET", "/groups?before=9999-12-31T23:59:59-23:59", None),
        ("GET", "/admin/audit?since=9999-12-31T23:59:59-23:59", None),
        ("GET", "/admin/audit?until=0001-01-01T00:00:00%2B14:00", None),
        ("POST", "/admin/users/{free}/suspend", {"until": "9999-12-31T23:59:59-23:59"}),
        ("GET", "/conversations/1/messages?before_id=9223372036854775808", None),
        ("GET", "/messages/search?q=x&before_id=-1", None),
        ("POST", "/blocks", {"user_id": 2**31}),
        ("POST", "/conversations/1/read", {"message_id": 2**63}),
    ],
)
async def test_out_of_range_dates_and_numbers_are_refused_plainly(
    client, people, method, path, payload
) -> None:
    r = await client.request(
        method,
        f"{API}{path.format(free=people.free.id)}",
        json=payload,
        headers=people.admin.headers,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_out_of_range_page_addresses_are_not_found_not_a_crash(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        for path in (
            f"/messages/{conv['id']}?before=9223372036854775808",
            f"/messages/{conv['id']}?edit=99999999999999999999",
            "/messages?before=9999-12-31T23:59:59-23:59",
            "/messages?current=-5",
            "/messages/9223372036854775808",
        ):
            r = await c.get(path)
            assert r.status_code in (404, 422), (path, r.status_code)


async def test_bodies_that_show_nothing_are_empty(client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    for body in ("\u200b", "\u200b\u200d\u2060", "\ufeff", "\u3164", "\u2800 \u2800"):
        r = await send(client, people.priv, conv["id"], body)
        assert r.status_code == 422 and r.json()["error"]["fields"] == {
            "body": "must not be empty"
        }, repr(body)
    r = await client.post(
        f"{API}/groups",
        json={"title": "\u200b", "member_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 422
    assert (await send(client, people.priv, conv["id"], "a\u200bb")).status_code == 201


@pytest.fixture
async def limited(settings):  # type: ignore[no-untyped-def]
    """The same data, served with the default limits on."""
    application = create_app(settings.model_copy(update={"rate_limits_enabled": True}))
    async with application.router.lifespan_context(application):
        yield application


async def test_edits_starts_reports_and_tickets_are_limited_like_sends(
    app, client, people, limited
) -> None:
    from httpx import ASGITransport, AsyncClient

    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "first")).json()
    theirs = (await send(client, people.free, conv["id"], "reply")).json()
    async with AsyncClient(transport=ASGITransport(app=limited), base_url="http://t") as lc:

        async def until_limited(call) -> int:  # type: ignore[no-untyped-def]
            for n in range(1, 200):
                r = await call(n)
                if r.status_code == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert r.json()["error"]["code"] == "rate_limited"
                    return n
                assert r.status_code < 400, r.text
            raise AssertionError("never limited")

        edits = await until_limited(
            lambda n: lc.patch(
                f"{API}/messages/{msg['id']}", json={"body": f"v{n}"}, headers=people.priv.headers
            )
        )
        reports = await until_limited(
            lambda n: lc.post(
                f"{API}/messages/{theirs['id']}/report",
                json={"reason": "spam", "details": f"{n}"},
                headers=people.priv.headers,
            )
        )
        starts = await until_limited(
            lambda n: lc.post(
                f"{API}/groups",
                json={"title": f"Group {n}", "member_ids": [people.free.id]},
                headers=people.priv.headers,
            )
        )
        tickets = await until_limited(
            lambda n: lc.post(f"{API}/ws/ticket", headers=people.priv.headers)
        )
    assert edits <= 31 and reports <= 31 and starts <= 61 and tickets <= 31


async def test_a_link_from_another_site_does_not_mark_a_thread_read(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hello")

    async def unread() -> int:
        r = await client.get(f"{API}/unread", headers=people.free.headers)
        return int(r.json()["total"])

    async with browser(app) as c:
        await sign_in(c, "free")
        url = f"/messages/{conv['id']}"
        for headers in (
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},
            {"Sec-Fetch-Site": "", "Referer": "https://elsewhere.example/page"},
        ):
            r = await c.get(url, headers=headers)
            assert r.status_code == 200 and "hello" in r.text  # shown all the same
            assert await unread() == 1, headers
        c.headers.pop("Sec-Fetch-Site")
        assert (await c.get(url)).status_code == 200  # no evidence at all
        assert await unread() == 1
        r = await c.get(url, headers={"Referer": "http://testserver/messages"})
        assert await unread() == 0  # from Pigeon's own pages (a browser without Sec-Fetch)
    await send(client, people.priv, conv["id"], "again")
    async with signed_in(app, "free") as c:
        await c.get(f"/messages/{conv['id']}")  # a browser moving through the site
        assert await unread() == 0
