"""Reactions, keeping conversations one's own way, and reporting a person, through the pages
with script off: plain forms, a redirect, and the page as it then reads."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from tests.support.people import PASSWORD, Person, dm, send
from tests.web.support import csrf_of, post_form, signed_in

API = "/api/v1"


def pills(page: str, message_id: int) -> list[str]:
    """The reaction pills under a message, as a screen reader names them, pressed marked *."""
    item = page[page.index(f'id="m{message_id}"') :]
    item = item[: item.index('<div class="meta">')]
    found = re.findall(r'class="pill" aria-pressed="(true|false)" aria-label="([^"]+)"', item)
    return [label + (" *" if pressed == "true" else "") for pressed, label in found]


async def react_form(c: Any, conv_id: int, message_id: int, emoji: str, **extra: str) -> Any:
    return await post_form(
        c,
        f"/messages/{conv_id}",
        f"/messages/{conv_id}/m/{message_id}/react",
        {"emoji": emoji, **extra},
    )


def row_of(page: str, conv_id: int) -> str:
    """One row of the conversation list, from its link to the end of its item."""
    start = page.index(f'data-conversation-id="{conv_id}"')
    start = page.rindex("<a ", 0, start)
    return page[start : page.index("</li>", start)]


def row_names(page: str) -> list[str]:
    return re.findall(r'<span class="convrow-name">(.*?)</span>\s*<time', page, re.S)


async def test_react_with_the_palette_then_take_it_back(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "Your book is in")).json()
    await client.post(
        f"{API}/messages/{msg['id']}/reactions", json={"emoji": "👍"}, headers=people.priv.headers
    )
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert pills(page, msg["id"]) == ["👍 1: Priv"]
        assert 'aria-label="React with ❤️"' in page  # the palette, on someone else's message

        r = await react_form(c, conv["id"], msg["id"], "👍")
        assert r.status_code == 303 and r.headers["location"].endswith(f"#m{msg['id']}")
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert pills(page, msg["id"]) == ["👍 2: Priv and you *"]
        assert ">👍 2<" in page

        await react_form(c, conv["id"], msg["id"], "❤️")
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert pills(page, msg["id"]) == ["👍 2: Priv and you *", "❤️ 1: You *"]

        await react_form(c, conv["id"], msg["id"], "👍", remove="1")
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert pills(page, msg["id"]) == ["👍 1: Priv", "❤️ 1: You *"]
    history = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    assert history.json()[0]["reactions"] == [
        {"emoji": "👍", "count": 1, "user_ids": [people.priv.id]},
        {"emoji": "❤️", "count": 1, "user_ids": [people.free.id]},
    ]


async def test_react_with_an_emoji_typed_in_the_menu(app, client, people) -> None:
    """Beside the palette, a field takes any one emoji, through the same route; anything else
    is refused under the field, with the menu open and what was typed kept."""
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "We got the signed copy")).json()
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        field = f'<label for="emoji-{msg["id"]}">Other emoji</label>'
        assert field in page
        form = page[page.rindex("<form ", 0, page.index(field)) : page.index(field)]
        assert f'action="/messages/{conv["id"]}/m/{msg["id"]}/react"' in form

        r = await react_form(c, conv["id"], msg["id"], " 🎉 ")
        assert r.status_code == 303 and r.headers["location"].endswith(f"#m{msg['id']}")
        await react_form(c, conv["id"], msg["id"], "👋🏽")
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert pills(page, msg["id"]) == ["🎉 1: You *", "👋🏽 1: You *"]

        r = await react_form(c, conv["id"], msg["id"], "ok 👍")
        assert r.status_code == 422
        item = r.text[r.text.index(f'id="m{msg["id"]}"') :]
        assert '<details class="actions" open>' in item
        assert re.search(
            rf'id="emoji-{msg["id"]}" name="emoji" [^>]*value="ok 👍" aria-invalid="true"'
            rf' aria-describedby="emoji-error-{msg["id"]}"',
            item,
        )
        assert f'id="emoji-error-{msg["id"]}" role="alert">A reaction is one emoji.<' in item
        assert pills(r.text, msg["id"]) == ["🎉 1: You *", "👋🏽 1: You *"]
        assert re.search(r'id="reply-error" role="alert" hidden>', r.text)  # said once


async def test_a_blocked_person_is_told_they_cannot_react(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "hello")).json()
    async with signed_in(app, "priv") as c:
        await post_form(c, "/u/free", "/u/free/block", {})
    async with signed_in(app, "free") as c:
        r = await react_form(c, conv["id"], msg["id"], "😮")
        assert r.status_code == 403
        assert re.search(r'id="reply-error" role="alert">[^<]+<', r.text)
        assert pills(r.text, msg["id"]) == []


@contextmanager
def statements(app: Any) -> Iterator[list[str]]:
    """Every SQL statement either database runs meanwhile."""
    dbs = app.state.runtime.dbs
    engines = {
        id(e): e
        for db in (dbs.app, dbs.messaging)
        for e in (db.write_engine.sync_engine, db.read_engine.sync_engine, db.sync_reader)
        if e is not None
    }
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    for engine in engines.values():
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        for engine in engines.values():
            event.remove(engine, "before_cursor_execute", count)


async def react_api(client: Any, who: Person, message_id: int, emoji: str) -> None:
    r = await client.post(
        f"{API}/messages/{message_id}/reactions", json={"emoji": emoji}, headers=who.headers
    )
    assert r.status_code in (200, 201), r.text


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    """Without the Web Push fan-out, whose pass after each send would run its own statements
    while a page's are counted (nothing here is about pushes)."""
    return settings.model_copy(update={"push_interval_seconds": 0})


async def fewest_statements(app: Any, c: Any, url: str) -> tuple[str, list[str]]:
    """The page, and the statements of the leaner of two loads in a row: a background job
    (the push fan-out's pass after a send) or a cache that lapsed can add statements to one
    load, while a query per pill or per person would be in both."""
    loads = []
    for _ in range(2):
        with statements(app) as seen:
            page = (await c.get(url)).text
        loads.append((page, seen))
    return min(loads, key=lambda load: len(load[1]))


async def test_a_pill_names_who_reacted(app, client, people) -> None:
    """Who reacted, in the order they did: the first few by name (the viewer as "you"), then
    how many others; a deleted account as "Deleted member". However many pills and people, the
    page reads the names in the same few queries."""
    club = [people.free, people.plus, people.manager, people.admin, people.free2]
    r = await client.post(
        f"{API}/groups",
        json={"title": "Book club", "member_ids": [p.id for p in club]},
        headers=people.priv.headers,
    )
    gid = r.json()["id"]
    msg = (await send(client, people.priv, gid, "Friday at six?")).json()
    await react_api(client, people.plus, msg["id"], "👍")
    url = f"/messages/{gid}"
    async with signed_in(app, "free") as c:
        await c.get(url)  # the first visit reads the thread: the later ones compare alike
        page, one_pill = await fewest_statements(app, c, url)
        assert pills(page, msg["id"]) == ["👍 1: Plus"]
        assert 'title="👍 1: Plus"' in page

        for who in (people.manager, people.admin, people.free2):
            await react_api(client, who, msg["id"], "👍")
        await react_form(c, gid, msg["id"], "👍")
        for who, emoji in ((people.plus, "❤️"), (people.manager, "😂"), (people.priv, "😂")):
            await react_api(client, who, msg["id"], emoji)
        page, many = await fewest_statements(app, c, url)
        assert pills(page, msg["id"]) == [
            "👍 5: Plus, Manager, you and 2 others *",
            "❤️ 1: Plus",
            "😂 2: Manager and Priv",
        ]
        extra = Counter(many) - Counter(one_pill)
        assert len(many) <= len(one_pill), ("a query per pill or per person", extra)

    gone = await client.request(
        "DELETE",
        f"{API}/me",
        json={"password": PASSWORD, "messages": "keep"},
        headers=people.plus.headers,
    )
    assert gone.status_code == 204, gone.text
    async with signed_in(app, "free") as c:
        page = (await c.get(url)).text
    assert pills(page, msg["id"])[:2] == [
        "👍 5: Deleted member, Manager, you and 2 others *",
        "❤️ 1: Deleted member",
    ]


async def organise(c: Any, conv_id: int, action: str) -> Any:
    return await post_form(
        c, f"/messages/{conv_id}", f"/messages/{conv_id}/organise", {"action": action}
    )


async def test_pin_mute_and_mark_unread_show_in_the_list(app, client, people) -> None:
    names = ("priv", "plus", "manager")
    convs = {}
    for name in names:  # manager's is the newest
        convs[name] = await dm(client, people[name], people.free)
        await send(client, people[name], convs[name]["id"], f"from {name}")
    async with signed_in(app, "free") as c:
        assert row_names((await c.get("/messages")).text) == ["Manager", "Plus", "Priv"]

        r = await organise(c, convs["priv"]["id"], "pin")
        assert r.status_code == 303 and r.headers["location"] == f"/messages/{convs['priv']['id']}"
        page = (await c.get("/messages")).text
        assert row_names(page)[0].endswith("Priv") and "Pinned: </span>Priv" in page
        thread = (await c.get(f"/messages/{convs['priv']['id']}")).text
        assert 'value="unpin"' in thread and ">Unpin<" in thread

        await organise(c, convs["manager"]["id"], "mute")
        await send(client, people.manager, convs["manager"]["id"], "again")
        page = (await c.get("/messages")).text
        row = row_of(page, convs["manager"]["id"])
        assert "muted-row" in row and '<span class="sr-only">, muted</span>' in row
        assert 'class="badge"' not in row and 'class="convrow unread' not in row
        assert 'class="quiet-count">1<' in row  # the form's page read the first

        await organise(c, convs["plus"]["id"], "unread")  # read already: now marked unread
        page = (await c.get("/messages")).text
        row = row_of(page, convs["plus"]["id"])
        assert 'class="convrow unread"' in row and "Marked unread" in row
        await c.get(f"/messages/{convs['plus']['id']}")  # reading it clears the mark
        page = (await c.get("/messages")).text
        row = row_of(page, convs["plus"]["id"])
        assert "Marked unread" not in row

        await organise(c, convs["priv"]["id"], "unpin")
        await organise(c, convs["manager"]["id"], "unmute")
        page = (await c.get("/messages")).text
        assert "Pinned:" not in page and "muted-row" not in page


async def test_a_fourth_pin_is_refused_in_place(app, client, people) -> None:
    convs = []
    for name in ("priv", "plus", "manager", "admin"):
        convs.append(await dm(client, people[name], people.free))
    async with signed_in(app, "free") as c:
        for conv in convs[:3]:
            assert (await organise(c, conv["id"], "pin")).status_code == 303
        r = await organise(c, convs[3]["id"], "pin")
        assert r.status_code == 409
        assert re.search(r'id="menu-error">You can pin at most 3 conversations', r.text)
        assert '<details class="actions convo-menu" open>' in r.text


async def test_archive_moves_it_to_the_archived_list_until_something_new(app, client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "first")
    async with signed_in(app, "free") as c:
        r = await organise(c, conv["id"], "archive")
        assert r.headers["location"] == "/messages"
        page = (await c.get("/messages")).text
        assert row_names(page) == [] and 'href="/messages?archived=1"' in page
        shelf = (await c.get("/messages?archived=1")).text
        assert row_names(shelf) == ["Priv"] and "Unarchive Priv" in shelf

        r = await c.post(
            f"/messages/{conv['id']}/organise",
            data={
                "action": "unarchive",
                "next": "/messages?archived=1",
                "csrf_token": csrf_of(shelf),
            },
        )
        assert r.headers["location"] == "/messages?archived=1"
        assert row_names((await c.get("/messages?archived=1")).text) == []
        assert row_names((await c.get("/messages")).text) == ["Priv"]

        await organise(c, conv["id"], "archive")
        await send(client, people.priv, conv["id"], "something new")
        assert row_names((await c.get("/messages")).text) == ["Priv"]


async def test_delete_chat_removes_it_for_me_until_the_next_message(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "old news")
    async with signed_in(app, "free") as c:
        thread = (await c.get(f"/messages/{conv['id']}")).text
        assert re.search(r'action="/messages/\d+/remove" data-confirm="Delete this chat', thread)
        r = await post_form(c, f"/messages/{conv['id']}", f"/messages/{conv['id']}/remove", {})
        assert r.status_code == 303 and r.headers["location"] == "/messages"
        assert row_names((await c.get("/messages")).text) == []
        await send(client, people.priv, conv["id"], "fresh start")
        page = (await c.get("/messages")).text
        assert row_names(page) == ["Priv"] and "fresh start" in page
        thread = (await c.get(f"/messages/{conv['id']}")).text
        assert "fresh start" in thread and "old news" not in thread
    async with signed_in(app, "priv") as c:  # the other keeps everything
        assert "old news" in (await c.get(f"/messages/{conv['id']}")).text


async def test_report_a_person_from_their_profile(app, client, people) -> None:
    async with signed_in(app, "free") as c:
        own = (await c.get("/u/free")).text
        assert "/u/free/report" not in own
        page = (await c.get("/u/priv")).text
        assert '<details class="report-person">' in page and 'name="reason"' in page
        r = await post_form(
            c, "/u/priv", "/u/priv/report", {"reason": "harassment", "details": "rude at the till"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/u/priv?notice=reported"
        page = (await c.get(r.headers["location"])).text
        assert "Thanks, the moderators will look at it." in page

        r = await post_form(c, "/u/priv", "/u/priv/report", {"reason": "", "details": "kept"})
        assert r.status_code == 422 and "Pick a reason" in r.text and ">kept</textarea>" in r.text
    queue = (await client.get(f"{API}/admin/reports", headers=people.admin.headers)).json()
    assert len(queue) == 1
    item = queue[0]
    assert item["message_state"] == "person" and item["reason"] == "harassment"
    assert item["reporter"]["id"] == people.free.id and item["author"]["id"] == people.priv.id


async def test_a_member_reports_a_message_from_its_menu(app, client, people) -> None:
    from tests.support.people import dm, send
    from tests.web.support import post_form, signed_in

    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "buy my stuff")).json()
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        link = f'href="/messages/{conv["id"]}?report={msg["id"]}#m{msg["id"]}"'
        assert link in page  # the menu's Report opens the form for that message
        page = (await c.get(f"/messages/{conv['id']}?report={msg['id']}")).text
        assert f'action="/messages/{conv["id"]}/m/{msg["id"]}/report"' in page
        r = await post_form(
            c,
            f"/messages/{conv['id']}",
            f"/messages/{conv['id']}/m/{msg['id']}/report",
            {"reason": "spam", "details": "again"},
        )
        assert r.status_code == 303 and "reported=1" in r.headers["location"]
        page = (await c.get(r.headers["location"])).text
        assert "Thanks, the moderators will look at it." in page
        r = await post_form(
            c,
            f"/messages/{conv['id']}",
            f"/messages/{conv['id']}/m/{msg['id']}/report",
            {"reason": "not a reason"},
        )
        assert r.status_code == 422 and "Pick a reason" in r.text
        assert '<details class="report-message" open>' in r.text  # the form stays open
    async with signed_in(app, "priv") as c:  # one's own messages have no Report
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert f"/m/{msg['id']}/report" not in page
    queue = await client.get(f"{API}/admin/reports", headers=people.admin.headers)
    [item] = queue.json()
    assert item["message_id"] == msg["id"] and item["reason"] == "spam"
