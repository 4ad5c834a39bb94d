"""Message requests through the pages with script off: the "Requests (N)" link, the requests
list, and a request's banner with Accept, Decline, Block and Report as plain forms."""

from __future__ import annotations

import re
from typing import Any

from tests.support.people import dm, send
from tests.web.support import post_form, signed_in

API = "/api/v1"


def row_names(page: str) -> list[str]:
    return re.findall(r'<span class="convrow-name">(.*?)</span>\s*<time', page, re.S)


async def a_request(client: Any, people: Any, body: str = "hello from priv") -> int:
    conv = await dm(client, people.priv, people.free, accepted=False)
    r = await send(client, people.priv, conv["id"], body)
    assert r.status_code == 201
    return int(conv["id"])


async def test_a_request_is_behind_the_requests_link_not_in_the_list(app, client, people):
    conv_id = await a_request(client, people)
    async with signed_in(app, "free") as c:
        inbox = (await c.get("/messages")).text
        assert row_names(inbox) == []
        assert re.search(r'<a href="/messages/requests" id="requests-link">Requests \(1\)', inbox)
        assert 'id="nav-unread" hidden' in inbox  # no badge for a request
        # the script's refresh of the list keeps the link
        partial = (await c.get("/messages?partial=1")).text
        assert "Requests (1)" in partial

        requests = await c.get("/messages/requests")
        assert requests.status_code == 200
        assert row_names(requests.text) == ["Priv"]
        assert f'href="/messages/{conv_id}#unread"' in requests.text
        assert row_names((await c.get("/messages/requests?partial=1")).text) == ["Priv"]

        thread = (await c.get(f"/messages/{conv_id}")).text
        assert (
            "<strong>Priv</strong> wants to message you. They won't see that you've read "
            "their messages until you accept." in thread
        )
        for button in ("request-accept", "request-decline", "request-block"):
            assert f'id="{button}"' in thread
        assert '<select id="request-reason" name="reason" required>' in thread

    # the sender sees no banner, and nothing that says it was read
    async with signed_in(app, "priv") as c:
        thread = (await c.get(f"/messages/{conv_id}")).text
        assert "request-banner" not in thread and 'class="seen"' not in thread
        assert row_names((await c.get("/messages")).text) == ["Free"]
        assert "requests-link" not in (await c.get("/messages")).text


async def test_accept_moves_it_to_the_list_and_shows_seen_to_the_sender(app, client, people):
    conv_id = await a_request(client, people)
    async with signed_in(app, "free") as c:
        await c.get(f"/messages/{conv_id}")  # opened and read while still a request
        r = await post_form(c, f"/messages/{conv_id}", f"/messages/{conv_id}/accept", {})
        assert r.status_code == 303 and r.headers["location"] == f"/messages/{conv_id}#latest"
        thread = (await c.get(f"/messages/{conv_id}")).text
        assert "request-banner" not in thread
        inbox = (await c.get("/messages")).text
        assert row_names(inbox) == ["Priv"] and "requests-link" not in inbox
    async with signed_in(app, "priv") as c:
        assert 'class="seen"' in (await c.get(f"/messages/{conv_id}")).text


async def test_replying_from_the_request_accepts_it(app, client, people):
    conv_id = await a_request(client, people)
    async with signed_in(app, "free") as c:
        r = await post_form(
            c, f"/messages/{conv_id}", f"/messages/{conv_id}/send", {"body": "hi priv"}
        )
        assert r.status_code == 303
        assert "request-banner" not in (await c.get(f"/messages/{conv_id}")).text
        assert row_names((await c.get("/messages")).text) == ["Priv"]


async def test_decline_block_and_report(app, client, people):
    conv_id = await a_request(client, people)
    async with signed_in(app, "free") as c:
        r = await post_form(
            c, f"/messages/{conv_id}", f"/messages/{conv_id}/decline", {"answer": "decline"}
        )
        assert (
            r.status_code == 303 and r.headers["location"] == "/messages/requests?notice=declined"
        )
        page = (await c.get(r.headers["location"])).text
        assert "Declined. They are not told" in page and "No message requests." in page

        await send(client, people.priv, conv_id, "please answer")  # back as a request
        assert row_names((await c.get("/messages/requests")).text) == ["Priv"]

        # a report needs a reason: said in place, nothing declined
        r = await post_form(
            c,
            f"/messages/{conv_id}",
            f"/messages/{conv_id}/decline",
            {"answer": "report", "reason": ""},
        )
        assert r.status_code == 422 and "To report, pick a reason" in r.text
        assert row_names((await c.get("/messages/requests")).text) == ["Priv"]

        r = await post_form(
            c,
            f"/messages/{conv_id}",
            f"/messages/{conv_id}/decline",
            {"answer": "report", "reason": "spam", "details": "sells things"},
        )
        assert r.headers["location"] == "/messages/requests?notice=reported"
        queue = (await client.get(f"{API}/admin/reports", headers=people.admin.headers)).json()
        assert [(q["reason"], q["details"]) for q in queue] == [("spam", "sells things")]

        await send(client, people.priv, conv_id, "last try")
        r = await post_form(
            c, f"/messages/{conv_id}", f"/messages/{conv_id}/decline", {"answer": "block"}
        )
        assert r.headers["location"] == "/messages/requests?notice=blocked"
        blocked = (await client.get(f"{API}/blocks", headers=people.free.headers)).json()
        assert [u["id"] for u in blocked] == [people.priv.id]

        # no longer a request: declining again is explained in place
        await client.post(f"{API}/conversations/{conv_id}/accept", headers=people.free.headers)
        r = await post_form(
            c, f"/messages/{conv_id}", f"/messages/{conv_id}/decline", {"answer": "decline"}
        )
        assert r.status_code == 409 and "not a message request" in r.text
        r = await post_form(
            c, f"/messages/{conv_id}", f"/messages/{conv_id}/decline", {"answer": "shrug"}
        )
        assert r.status_code == 422


async def test_answers_need_the_csrf_token(app, client, people):
    conv_id = await a_request(client, people)
    async with signed_in(app, "free") as c:
        r = await c.post(f"/messages/{conv_id}/accept", data={})
        assert r.status_code == 403
        assert row_names((await c.get("/messages/requests")).text) == ["Priv"]


async def test_many_requests_come_a_page_at_a_time(app, client, people, monkeypatch, clock):
    import datetime as dt

    from pigeon.web import request_pages

    monkeypatch.setattr(request_pages, "REQUESTS_PAGE", 2)
    for who in (people.priv, people.plus, people.manager):
        conv = await dm(client, who, people.free, accepted=False)
        await send(client, who, conv["id"], f"hello from {who.username}")
        clock.advance(dt.timedelta(seconds=1))
    async with signed_in(app, "free") as c:
        first = (await c.get("/messages/requests")).text
        assert row_names(first) == ["Manager", "Plus"]
        older = re.search(r'href="(/messages/requests\?before=[^"]+)">Older conversations', first)
        assert older, "a link to the older requests"
        second = (await c.get(older.group(1).replace("&amp;", "&"))).text
        assert row_names(second) == ["Priv"]
        assert "Older conversations" not in second
