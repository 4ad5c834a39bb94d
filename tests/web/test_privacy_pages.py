"""Privacy from the pages without script: the profile's settings, and the thread header's last
seen, shown only where the rule allows."""

from __future__ import annotations

import datetime as dt

from pigeon.accounts import service as accounts
from tests.support.people import dm, send
from tests.web.support import post_form, signed_in


async def seen(app, user_id: int, when: dt.datetime) -> None:  # type: ignore[no-untyped-def]
    rt = app.state.runtime
    async with rt.dbs.app.write() as session:
        await accounts.touch_last_seen(session, user_id, when)


async def test_the_privacy_settings_from_the_profile(app, client, people) -> None:
    async with signed_in(app, "free") as c:
        page = (await c.get("/u/free")).text
        assert 'name="show_last_seen" value="1" aria-describedby="last-seen-help" checked' in page
        assert 'name="read_receipts" value="1" aria-describedby="receipts-help" checked' in page
        r = await post_form(c, "/u/free", "/u/free/privacy", {"read_receipts": "1"})
        assert r.status_code == 303 and r.headers["location"] == "/u/free?notice=saved#privacy"
        page = (await c.get("/u/free")).text
        assert 'aria-describedby="last-seen-help">' in page  # unchecked now
        assert 'aria-describedby="receipts-help" checked' in page
    me = await client.get(f"/api/v1/users/{people.free.id}", headers=people.free.headers)
    assert me.json()["show_last_seen"] is False and me.json()["read_receipts"] is True
    async with signed_in(app, "priv") as c:  # nobody else has the form
        assert 'action="/u/free/privacy"' not in (await c.get("/u/free")).text
        r = await post_form(c, "/u/free", "/u/free/privacy", {})
        assert r.status_code == 403


def earlier_today(now: dt.datetime) -> dt.datetime:
    """A moment before `now` on the same (UTC) day: an hour ago, or less just after midnight."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return now - min(dt.timedelta(hours=1), (now - midnight) / 2)


async def test_the_thread_header_says_when_they_were_last_seen(app, client, people, clock) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hi")
    await seen(app, people.free.id, earlier_today(clock.now()))
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert 'class="presence" id="presence"' in page and "last seen today at" in page
        await client.put(
            f"/api/v1/users/{people.free.id}",
            json={"show_last_seen": False},
            headers=people.free.headers,
        )
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert 'id="presence"' not in page and "last seen" not in page


async def test_no_last_seen_while_it_is_a_message_request(app, client, people, clock) -> None:
    conv = await dm(client, people.priv, people.free, accepted=False)
    await send(client, people.priv, conv["id"], "hello, we have not met")
    await seen(app, people.free.id, earlier_today(clock.now()))
    await seen(app, people.priv.id, earlier_today(clock.now()))
    for who in ("priv", "free"):  # neither side, until it is accepted
        async with signed_in(app, who) as c:
            page = (await c.get(f"/messages/{conv['id']}")).text
            assert 'id="presence"' not in page and "last seen" not in page
    r = await client.post(f"/api/v1/conversations/{conv['id']}/accept", headers=people.free.headers)
    assert r.status_code == 200
    async with signed_in(app, "priv") as c:
        assert "last seen today at" in (await c.get(f"/messages/{conv['id']}")).text


async def test_no_presence_in_the_header_across_a_block_or_when_i_hide_mine(
    app, client, people, clock
) -> None:
    """Online and last seen in a direct conversation's header follow `core.people.withheld`:
    neither across a block, whoever blocked whom, nor to someone who hides their own."""
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hi")
    for who in (people.priv, people.free):
        await seen(app, who.id, earlier_today(clock.now()))
        await app.state.hub.presence.came_online(who.id)

    async def headers() -> dict[str, str]:
        """Each one's thread header; the header's presence as the page's script asks for it
        again once live says the same, under the same rules."""
        found = {}
        for who in ("priv", "free"):
            async with signed_in(app, who) as c:
                page = (await c.get(f"/messages/{conv['id']}")).text
                again = await c.get(f"/messages/{conv['id']}/presence")
            start = page.index('<header class="thread-head">')
            found[who] = page[start : page.index("</header>", start)]
            assert again.status_code == 200 and again.text.strip() in found[who], who
            if not shown(found[who]):
                assert again.text.strip() == "", who
        return found

    def shown(header: str) -> bool:
        return 'id="presence"' in header or ">online<" in header or "last seen" in header

    assert all(">online<" in h for h in (await headers()).values())  # as it is without a block
    for blocker, blocked in (("priv", "free"), ("free", "priv")):
        async with signed_in(app, blocker) as c:
            r = await post_form(c, f"/u/{blocked}", f"/u/{blocked}/block", {})
            assert r.status_code == 303
            assert not any(shown(h) for h in (await headers()).values()), blocker
            await post_form(c, f"/u/{blocked}", f"/u/{blocked}/unblock", {})
    await app.state.hub.presence.went_offline(people.free.id)
    assert "last seen today at" in (await headers())["priv"]

    r = await client.put(
        f"/api/v1/users/{people.priv.id}",
        json={"show_last_seen": False},
        headers=people.priv.headers,
    )
    assert r.status_code == 200, r.text
    assert not any(shown(h) for h in (await headers()).values())
    async with signed_in(app, "plus") as c:  # not in the conversation: nothing of it
        assert (await c.get(f"/messages/{conv['id']}/presence")).status_code == 404
