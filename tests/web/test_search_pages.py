"""The search box and the search page through plain HTTP, as a browser without script uses them."""

from __future__ import annotations

import re

from tests.support.people import dm, send
from tests.web.support import signed_in

API = "/api/v1"


def section(page: str, heading_id: str) -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start : page.index("</section>", start)]


async def test_the_list_and_the_thread_carry_a_search_box(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "free") as c:
        for url in ("/messages", f"/messages/{conv['id']}"):
            page = (await c.get(url)).text
            box = page[page.index('class="list-search"') - 60 :]
            assert '<form method="get" action="/messages/search"' in box
            assert '<label for="list-q" class="sr-only">Search conversations' in box
            assert 'name="q"' in box[: box.index("</form>")]


async def test_search_finds_conversations_people_and_messages(app, client, people) -> None:
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Poetry circle", "member_ids": [people.free.id, people.manager.id]},
        )
    ).json()
    await send(client, people.manager, group["id"], "Poetry night is on Friday")
    direct = await dm(client, people.plus, people.priv)
    await send(client, people.plus, direct["id"], "Not for the others: poetry")
    async with signed_in(app, "priv") as c:
        page = (await c.get("/messages/search", params={"q": "poet"})).text
        convos = section(page, "hits-conversations")
        assert f'href="/messages/{group["id"]}#latest"' in convos and "Poetry circle" in convos
        messages = section(page, "hits-messages")
        hits = re.findall(r'href="(/messages/(\d+)\?at=(\d+)#m(\d+))"', messages)
        assert [(int(cid), at == mid) for _, cid, at, mid in hits] == [
            (direct["id"], True),
            (group["id"], True),
        ]
        assert "<mark>Poetry</mark> night is on Friday" in messages
        assert "Manager:" in messages and "Poetry circle" in messages
        # the link lands on the message, in the thread's newest page (live) when it is there
        thread = (await c.get(hits[1][0].split("#")[0])).text
        assert f'id="m{hits[1][3]}"' in thread

        people_page = (await c.get("/messages/search", params={"q": "fre"})).text
        found = section(people_page, "hits-people")
        assert f'name="user_id" value="{people.free.id}"' in found  # a Message button
        assert f'name="user_id" value="{people.free2.id}"' in found
        assert 'action="/messages/new"' in people_page
        # and the free member is also in a conversation of mine (the group)
        assert f'href="/messages/{group["id"]}#latest"' in section(
            people_page, "hits-conversations"
        )


async def test_people_outside_my_community_or_blocked_are_not_offered(app, client, people) -> None:
    await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free2.headers
    )
    existing = await dm(client, people.plus, people.manager)
    async with signed_in(app, "plus") as c:
        page = (await c.get("/messages/search", params={"q": "r"})).text
        found = section(page, "hits-people")
        assert "@outsider" not in found
        assert f'href="/messages/{existing["id"]}#latest"' in found  # Open chat
    async with signed_in(app, "priv") as c:
        found = section((await c.get("/messages/search", params={"q": "free"})).text, "hits-people")
        assert "@free2" not in found and "@free<" in found


async def test_message_results_page_with_more_without_script(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    for i in range(23):
        await send(client, people.priv, conv["id"], f"bread batch {i}")
    async with signed_in(app, "free") as c:
        page = (await c.get("/messages/search", params={"q": "bread"})).text
        assert page.count('class="message-hit"') == 20
        more = re.search(
            r'href="(/messages/search\?q=bread&amp;before_id=\d+)" id="more-messages"', page
        )
        assert more
        rest = (await c.get(more.group(1).replace("&amp;", "&"))).text
        assert rest.count('class="message-hit"') == 3
        assert "<mark>bread</mark> batch 0" in rest and 'id="more-messages"' not in rest
        assert 'id="hits-people"' not in rest  # later pages are messages only


async def test_hostile_text_stays_text_and_odd_queries_answer_in_place(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "<script>alert('x')</script> <b>bold</b> scripted")
    async with signed_in(app, "free") as c:
        page = (await c.get("/messages/search", params={"q": "script"})).text
        hits = section(page, "hits-messages")
        assert "<script>" not in hits and "<b>" not in hits
        assert "&lt;<mark>script</mark>&gt;alert" in hits
        assert "<mark>scripted</mark>" in hits
        for q in ['"', "NEAR(", "*", "-x", "a:b", ") OR (", "<mark>", "   "]:
            r = await c.get("/messages/search", params={"q": q})
            assert r.status_code == 200, (q, r.status_code)
        r = await c.get("/messages/search", params={"q": "x" * 201})
        assert r.status_code == 422
        assert re.search(r'role="alert" id="search-error">Search for at most 200', r.text)
        r = await c.get("/messages/search", params={"q": "bad\x01"})
        assert r.status_code == 422 and 'id="search-error"' in r.text


async def test_search_needs_sign_in_and_messaging_on(app, client, people_off) -> None:
    async with signed_in(app, "free") as c:
        r = await c.get("/messages/search", params={"q": "x"})
        assert r.status_code == 403
    async with signed_in(app, "free") as c:
        c.cookies.clear()
        r = await c.get("/messages/search", params={"q": "x"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


async def test_the_conversations_api(app, client, people) -> None:
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Zoë's readers", "member_ids": [people.free.id]},
        )
    ).json()
    direct = await dm(client, people.plus, people.free)

    async def ids(who, q):  # type: ignore[no-untyped-def]
        r = await client.get(f"{API}/search/conversations", params={"q": q}, headers=who.headers)
        assert r.status_code == 200, r.text
        return [c["id"] for c in r.json()]

    assert await ids(people.free, "ZOE") == [group["id"]]  # case and accents aside
    assert await ids(people.free, "plu") == [direct["id"]]  # by the other person's username
    assert await ids(people.free, "Priv") == [group["id"]]  # by a member's name
    assert await ids(people.free2, "zoe") == []  # not a member
    assert await ids(people.free, "") == []
    r = await client.get(
        f"{API}/search/conversations", params={"q": "x" * 101}, headers=people.free.headers
    )
    assert r.status_code == 422 and r.json()["error"]["code"]
    schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/search/conversations" in schema["paths"]
