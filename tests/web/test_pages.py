"""The pages with script off: the list, the thread, reply, edit and delete."""

from __future__ import annotations

import re

from pigeon.core.errors import RateLimited
from pigeon.messaging import sending
from tests.support.people import dm, send
from tests.web.support import csrf_of, post_form, signed_in


async def test_empty_list_explains_what_to_do(app, people) -> None:
    async with signed_in(app, "priv") as c:
        page = await c.get("/messages")
        assert "No conversations yet." in page.text
        assert 'href="/messages/new"' in page.text
    async with signed_in(app, "free") as c:
        page = await c.get("/messages")
        assert "When someone writes to you" in page.text


async def test_list_shows_latest_first_with_preview_time_and_unread(app, client, people) -> None:
    first = await dm(client, people.priv, people.free)
    second = await dm(client, people.plus, people.free)
    await send(client, people.priv, first["id"], "older news")
    await send(client, people.plus, second["id"], "Newest\nnews here")
    await send(client, people.plus, second["id"], "and more")
    async with signed_in(app, "free") as c:
        page = (await c.get("/messages")).text
        assert page.index("Plus") < page.index("Priv")
        assert "and more" in page and "older news" in page
        row = page[page.index(f'data-conversation-id="{second["id"]}"') :]
        assert re.search(r'class="badge">2<', row[:1500])
        assert 'id="nav-unread"' in page and 'badge-count">3<' in page


async def test_list_pages_through_many_conversations(app, client, people) -> None:
    for name in ("priv", "plus", "manager", "admin"):
        conv = await dm(client, people[name], people.free)
        await send(client, people[name], conv["id"], f"from {name}")
    from pigeon.web import message_pages

    message_pages.LIST_PAGE, saved = 2, message_pages.LIST_PAGE
    try:
        async with signed_in(app, "free") as c:
            page = (await c.get("/messages")).text
            link = re.search(r'href="(/messages\?before=[^"]+)"', page)
            assert link and "from admin" in page and "from priv" not in page
            older = (await c.get(link.group(1).replace("&amp;", "&"))).text
            assert "from plus" in older and "from admin" not in older
    finally:
        message_pages.LIST_PAGE = saved


async def test_thread_reads_oldest_first_marks_read_and_groups_by_day(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    for text in ("one", "two", "three"):
        await send(client, people.priv, conv["id"], text)
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        thread = page[page.index('id="messages"') :]
        assert thread.index(">one<") < thread.index(">two<") < thread.index(">three<")
        assert 'class="day"' in page and "Today" in page
        assert 'id="nav-unread" hidden' in page  # opening the thread read it
    r = await client.get("/api/v1/unread", headers=people.free.headers)
    assert r.json()["total"] == 0


async def test_load_older_pages_back(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    for i in range(55):
        await send(client, people.priv, conv["id"], f"msg {i:02d}")
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "msg 54" in page and "msg 04<" not in page
        older = re.search(r'href="(/messages/\d+\?before=\d+)"', page)
        assert older, "no load-older link"
        back = (await c.get(older.group(1))).text
        assert "msg 00" in back and "msg 04" in back and "Jump to the newest" in back


async def test_free_member_replies_by_form_and_it_arrives(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "Your order is in")
    async with signed_in(app, "free") as c:
        page = await c.get(f"/messages/{conv['id']}")
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={
                "body": "Thanks, coming by",
                "csrf_token": csrf_of(page),
                "client_msg_id": "abc1",
            },
        )
        assert r.status_code == 303
        assert r.headers["location"].startswith(f"/messages/{conv['id']}#m")
        again = await c.post(
            f"/messages/{conv['id']}/send",
            data={
                "body": "Thanks, coming by",
                "csrf_token": csrf_of(page),
                "client_msg_id": "abc1",
            },
        )
        assert again.status_code == 303  # a double submit is the same message
    history = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    assert [m["body"] for m in history.json()] == ["Your order is in", "Thanks, coming by"]


async def test_a_failed_send_keeps_the_text_and_says_why(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        page = await c.get(f"/messages/{conv['id']}")
        long = "x" * 4001
        r = await c.post(
            f"/messages/{conv['id']}/send", data={"body": long, "csrf_token": csrf_of(page)}
        )
        assert r.status_code == 422
        assert "at most 4000 characters" in r.text and long in r.text
        await post_form(c, "/u/free", "/u/free/block", {})
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={"body": "still there?", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 403
        assert "You cannot message this person." in r.text and "still there?" in r.text
        assert 'id="blocked-note"' in (await c.get(f"/messages/{conv['id']}")).text


async def test_rate_limit_message_shows_in_the_reply_form(app, client, people, monkeypatch) -> None:
    conv = await dm(client, people.priv, people.free)

    async def limited(*args, **kwargs):  # the limiter's refusal, as the services raise it
        raise RateLimited(7)

    async with signed_in(app, "priv") as c:
        page = await c.get(f"/messages/{conv['id']}")
        monkeypatch.setattr(sending, "send_message", limited)
        r = await c.post(
            f"/messages/{conv['id']}/send", data={"body": "quick one", "csrf_token": csrf_of(page)}
        )
        assert r.status_code == 429 and r.headers["retry-after"] == "7"
        assert "try again in 7 s" in r.text and "quick one" in r.text


async def test_messaging_off_keeps_what_was_typed(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        page = await c.get(f"/messages/{conv['id']}")
        async with signed_in(app, "admin") as admin:
            await post_form(
                admin, "/admin", "/admin/messaging/toggle", {"enabled": "off", "confirm": "yes"}
            )
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={"body": "unsent words", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 403
        assert "Messaging is switched off" in r.text and "unsent words" in r.text


async def test_edit_and_delete_own_messages(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    mine = (await send(client, people.priv, conv["id"], "tyop")).json()
    theirs = (await send(client, people.free, conv["id"], "hello")).json()
    async with signed_in(app, "priv") as c:
        page = await c.get(f"/messages/{conv['id']}?edit={mine['id']}")
        assert f'action="/messages/{conv["id"]}/m/{mine["id"]}/edit"' in page.text
        assert f"/m/{theirs['id']}/edit" not in page.text
        r = await c.post(
            f"/messages/{conv['id']}/m/{mine['id']}/edit",
            data={"body": "typo fixed", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 303
        assert "typo fixed" in (await c.get(f"/messages/{conv['id']}")).text
        r = await c.post(
            f"/messages/{conv['id']}/m/{theirs['id']}/delete", data={"csrf_token": csrf_of(page)}
        )
        assert r.status_code == 403
        r = await c.post(
            f"/messages/{conv['id']}/m/{mine['id']}/delete", data={"csrf_token": csrf_of(page)}
        )
        assert r.status_code == 303
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "typo fixed" not in page and "Message deleted" in page


async def test_outsiders_cannot_open_a_thread(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "private")
    async with signed_in(app, "free2") as c:
        r = await c.get(f"/messages/{conv['id']}")
        assert r.status_code == 404 and "private" not in r.text
        r = await c.get(f"/messages/{conv['id']}/after/0")
        assert r.status_code == 404


async def test_fragments_render_new_messages_for_the_script(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    first = (await send(client, people.priv, conv["id"], "first")).json()
    await send(client, people.priv, conv["id"], "second")
    async with signed_in(app, "free") as c:
        r = await c.get(f"/messages/{conv['id']}/after/{first['id']}")
        assert "second" in r.text and "first" not in r.text
        one = await c.get(f"/messages/{conv['id']}/m/{first['id']}")
        assert "first" in one.text and "second" not in one.text


async def test_seen_under_my_last_message_once_the_other_person_read_it(app, client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "first")
    last = (await send(client, people.priv, conv["id"], "second")).json()
    async with signed_in(app, "priv") as c:
        assert '<p class="seen">' not in (await c.get(f"/messages/{conv['id']}")).text
        async with signed_in(app, "free") as reader:
            await reader.get(f"/messages/{conv['id']}")  # opening it reads it
        page = (await c.get(f"/messages/{conv['id']}")).text
        item = page[page.index(f'id="m{last["id"]}"') :]
        assert '<p class="seen">Seen</p>' in item[: item.index("</li>")]
        assert page.count('class="seen"') == 1


async def test_days_and_times_follow_the_readers_zone(app, client, people, clock) -> None:
    """23:30 UTC is already tomorrow in Tokyo: the day heading and the time say so."""
    import datetime as dt

    conv = await dm(client, people.priv, people.free)
    clock.freeze(dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.UTC))
    await client.post(
        f"/api/v1/conversations/{conv['id']}/messages",
        json={"body": "late"},
        headers=people.priv.headers,
    )
    clock.freeze(dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC))
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert 'data-day="2026-03-09"' in page and ">23:30<" in page
        c.cookies.set("tz", "Asia/Tokyo")
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert 'data-day="2026-03-10"' in page and ">08:30<" in page
        assert "Today" in page
        c.cookies.set("tz", "../../etc/passwd")  # nonsense falls back to the server's zone
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert 'data-day="2026-03-09"' in page
