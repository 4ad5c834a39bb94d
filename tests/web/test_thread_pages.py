"""The thread without script: replies with the message they answer, a menu for every message,
who wrote what for a screen reader, runs of messages grouped, where the unread ones start,
older history a page at a time, and a block that says who blocked whom and how to undo it."""

from __future__ import annotations

import datetime as dt
import re

from tests.support.people import dm, send
from tests.web.support import csrf_of, post_form, signed_in

API = "/api/v1"


def item(page: str, message_id: int) -> str:
    """One message's list item, as the page has it."""
    start = page.index(f'id="m{message_id}"')
    return page[start : page.index("</li>\n", start)]


def classes(page: str, message_id: int) -> set[str]:
    start = page.rindex("<li", 0, page.index(f'id="m{message_id}"'))
    found = re.search(r'class="([^"]*)"', page[start:])
    assert found
    return set(found.group(1).split())


async def test_reply_from_the_menu_without_script(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    first = (
        await send(client, people.priv, conv["id"], "Is the <Le Guin> in?\nAsking for a friend")
    ).json()
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert f'href="/messages/{conv["id"]}?reply={first["id"]}#reply-form"' in item(
            page, first["id"]
        )
        page = (await c.get(f"/messages/{conv['id']}?reply={first['id']}")).text
        assert "Replying to Priv" in page
        assert f'name="reply_to_id" value="{first["id"]}"' in page
        assert "Is the &lt;Le Guin&gt; in?" in page  # hostile text is still only text
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={
                "body": "Yes, shelf 3",
                "reply_to_id": str(first["id"]),
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 303
        page = (await c.get(f"/messages/{conv['id']}")).text
    reply_id = int(r.headers["location"].rsplit("#m", 1)[1])
    shown = item(page, reply_id)
    assert f'<a class="quote" href="#m{first["id"]}" data-quote="{first["id"]}">' in shown
    assert '<span class="quote-who">Priv</span>' in shown
    assert '<span class="quote-text">Is the &lt;Le Guin&gt; in?</span>' in shown
    assert "Asking for a friend" not in shown  # the first line only
    assert "You, replying to Priv:" in shown  # what a screen reader hears first
    history = (
        await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers)
    ).json()
    assert history[-1]["reply_to_id"] == first["id"]


async def test_a_reply_refused_keeps_its_text_and_what_it_answers(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    other = await dm(client, people.priv, people.plus)
    elsewhere = (await send(client, people.priv, other["id"], "not yours")).json()
    mine = (await send(client, people.priv, conv["id"], "hello")).json()
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{conv['id']}?reply={mine['id']}")).text
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={
                "body": "typed",
                "reply_to_id": str(elsewhere["id"]),
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 422
        assert ">typed</textarea>" in r.text
        assert (
            'id="reply-error"' in r.text
            and "hidden" not in r.text.split('id="reply-error"')[1][:40]
        )
        assert (
            f'name="reply_to_id" value="{elsewhere["id"]}"' not in r.text
        )  # not one of its messages
        # a quote of a message not in this conversation is not offered at all
        page = (await c.get(f"/messages/{conv['id']}?reply={elsewhere['id']}")).text
        assert "Replying to" not in page


async def test_the_quote_of_a_deleted_or_older_message(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    first = (await send(client, people.priv, conv["id"], "soon gone")).json()
    for n in range(55):
        await send(client, people.free, conv["id"], f"filler {n}")
    await send(client, people.free, conv["id"], "about that", reply_to_id=first["id"])
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        # the original is not on this page: the link opens the page that ends with it
        assert f'href="/messages/{conv["id"]}?before={first["id"] + 1}#m{first["id"]}"' in page
        await client.delete(f"{API}/messages/{first['id']}", headers=people.priv.headers)
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "Original message deleted" in page and "soon gone" not in page


async def test_every_message_has_a_menu_an_author_and_a_time(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    theirs = (await send(client, people.priv, conv["id"], "from priv")).json()
    mine = (await send(client, people.free, conv["id"], "from free")).json()
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
    a, b = item(page, theirs["id"]), item(page, mine["id"])
    assert '<span class="sr-only">Priv:</span>' in a and '<span class="sr-only">You:</span>' in b
    assert "Options for Priv&#39;s message at" in a and "Options for your message at" in b
    for shown in (a, b):
        assert "<time datetime=" in shown and ">Reply</a>" in shown and "data-copy" in shown
    assert 'class="report-link">Report</a>' in a and ">Edit</a>" not in a
    assert ">Edit</a>" in b and ">Delete</button>" in b and ">Report<" not in b
    # the refresh button's name is its text
    assert (
        '<button type="submit" class="small" title="Check for new messages">Refresh</button>'
        in page
    )


async def test_runs_of_messages_are_grouped(app, client, people, clock) -> None:
    conv = await dm(client, people.priv, people.free)
    ids = []
    for text in ("one", "two", "three"):
        ids.append((await send(client, people.priv, conv["id"], text)).json()["id"])
        clock.advance(dt.timedelta(minutes=1))
    clock.advance(dt.timedelta(minutes=10))
    ids.append((await send(client, people.priv, conv["id"], "later")).json()["id"])
    ids.append((await send(client, people.free, conv["id"], "reply")).json()["id"])
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
    shape = [classes(page, i) & {"cont", "more"} for i in ids]
    assert shape == [{"more"}, {"cont", "more"}, {"cont"}, set(), set()]


async def test_the_thread_opens_at_the_first_unread_message(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.free, conv["id"], "hi")
    read = (await send(client, people.priv, conv["id"], "read already")).json()
    async with signed_in(app, "free") as c:
        await c.get(f"/messages/{conv['id']}")
        new = [(await send(client, people.priv, conv["id"], f"new {n}")).json() for n in range(3)]
        page = (await c.get(f"/messages/{conv['id']}")).text
        divider = page.index('id="unread"')
        assert page.index(f'id="m{read["id"]}"') < divider < page.index(f'id="m{new[0]["id"]}"')
        assert "3 unread messages" in page
        again = (await c.get(f"/messages/{conv['id']}")).text
        assert 'id="unread"' not in again  # read now


async def test_older_history_comes_a_page_at_a_time(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    sent = [(await send(client, people.priv, conv["id"], f"m{n}")).json()["id"] for n in range(120)]
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        older = re.search(r'id="older" data-before="(\d+)"', page)
        assert older and int(older.group(1)) == sent[70]
        r = await c.get(f"/messages/{conv['id']}/before/{sent[70]}")
        assert r.status_code == 200 and r.headers["x-older-id"] == str(sent[20])
        shown = [int(x) for x in re.findall(r'data-id="(\d+)"', r.text)]
        assert shown == sent[20:70]
        r = await c.get(f"/messages/{conv['id']}/before/{sent[20]}")
        assert "x-older-id" not in r.headers
        assert [int(x) for x in re.findall(r'data-id="(\d+)"', r.text)] == sent[:20]
        # not a member: the same answer as for any other conversation one is not in
        other = await dm(client, people.priv, people.plus)
        r = await c.get(f"/messages/{other['id']}/before/{sent[20]}")
        assert r.status_code == 404


async def test_a_block_says_who_blocked_and_offers_unblock(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hello")
    async with signed_in(app, "priv") as c:
        await post_form(c, "/u/free", "/u/free/block", {})
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "You blocked Free." in page
        assert 'form="unblock-form"' in page and ">Unblock Free</button>" in page
        composer = page[page.index('id="reply-body"') :]
        assert composer[: composer.index(">")].endswith("disabled")
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "You blocked" not in page and "Unblock" not in page  # who blocked whom is theirs
        assert "You cannot message this person." in page
    async with signed_in(app, "priv") as c:
        r = await post_form(
            c,
            f"/messages/{conv['id']}",
            "/u/free/unblock",
            {"next": f"/messages/{conv['id']}#latest"},
        )
        assert r.status_code == 303 and r.headers["location"] == f"/messages/{conv['id']}#latest"
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "You blocked" not in page and "read-only" not in page
        # a `next` elsewhere is not followed
        await post_form(c, "/u/free", "/u/free/block", {})
        r = await post_form(c, "/u/free", "/u/free/unblock", {"next": "//evil.example/"})
        assert r.headers["location"] == "/u/free?notice=unblocked"


async def test_a_link_to_a_message_opens_the_thread_around_it(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    sent = [(await send(client, people.priv, conv["id"], f"m{n}")).json()["id"] for n in range(100)]
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}?at={sent[10]}")).text
        shown = [int(x) for x in re.findall(r'data-id="(\d+)"', page)]
        assert shown == sent[:36]  # the message, with the 25 after it and what fits before
        assert 'data-live="0"' in page and "Jump to the newest messages" in page
        page = (await c.get(f"/messages/{conv['id']}?at={sent[90]}")).text
        assert 'data-live="1"' in page  # on the newest page: the live thread
        assert [int(x) for x in re.findall(r'data-id="(\d+)"', page)] == sent[50:]


async def test_the_divider_counts_unread_messages_older_than_the_page(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    for n in range(60):
        await send(client, people.priv, conv["id"], f"news {n}")
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
    assert "60 unread messages" in page  # not only the 50 this page shows
