"""The switch's third state, read-only: members read, search and export; nothing new is sent,
edited, reacted to, started or uploaded, on every path; the pages say so; back on, all resumes."""

from __future__ import annotations

import html

from tests.media.samples import png
from tests.support.people import dm, send
from tests.test_cli import pigeon  # noqa: F401 - the CLI on a fresh data folder
from tests.web.support import post_form, signed_in

API = "/api/v1"
READ_ONLY = "messaging_read_only"


async def set_mode(client, people, **body):  # type: ignore[no-untyped-def]
    return await client.put(
        f"{API}/admin/settings/messaging", json=body, headers=people.admin.headers
    )


async def test_read_only_lets_members_read_and_refuses_every_write(app, client, people) -> None:
    conv = await dm(client, people.priv, people.plus)
    first = (await send(client, people.priv, conv["id"], "the atlas came in")).json()
    r = await set_mode(client, people, mode="read_only")
    assert r.status_code == 200 and r.json()["mode"] == "read_only" and r.json()["enabled"]

    priv, plus = people.priv.headers, people.plus.headers
    # reading, searching, exporting and marking read go on
    assert (await client.get(f"{API}/conversations", headers=plus)).status_code == 200
    r = await client.get(f"{API}/conversations/{conv['id']}/messages", headers=plus)
    assert [m["body"] for m in r.json()] == ["the atlas came in"]
    r = await client.get(f"{API}/messages/search", params={"q": "atlas"}, headers=plus)
    assert [m["id"] for m in r.json()] == [first["id"]]
    assert (await client.get(f"{API}/me/export", headers=plus)).status_code == 200
    r = await client.post(
        f"{API}/conversations/{conv['id']}/read", json={"message_id": first["id"]}, headers=plus
    )
    assert r.status_code in (200, 204), r.text

    # every write is refused with the same clear code
    refused = [
        await send(client, people.plus, conv["id"], "may I?"),
        await client.patch(f"{API}/messages/{first['id']}", json={"body": "x"}, headers=priv),
        await client.delete(f"{API}/messages/{first['id']}", headers=priv),
        await client.post(
            f"{API}/messages/{first['id']}/reactions", json={"emoji": "👍"}, headers=plus
        ),
        await client.post(
            f"{API}/conversations", json={"participant_ids": [people.manager.id]}, headers=priv
        ),
        await client.post(
            f"{API}/groups", json={"title": "Club", "member_ids": [people.plus.id]}, headers=priv
        ),
        await client.post(
            f"{API}/media/upload", files={"file": ("a.png", png(), "image/png")}, headers=priv
        ),
    ]
    for r in refused:
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == READ_ONLY
        assert "read-only" in r.json()["error"]["message"]
    r = await client.get(f"{API}/conversations/{conv['id']}/messages", headers=plus)
    assert [m["body"] for m in r.json()] == ["the atlas came in"]  # nothing changed

    # the pages: a banner everywhere, the composer closed, a posted reply refused in place
    async with signed_in(app, "plus") as c:
        page = await c.get(f"/messages/{conv['id']}")
        text = html.unescape(page.text)
        assert 'id="read-only-banner"' in page.text and "nothing new can be sent" in text
        assert (
            'id="reply-body" name="body" rows="1" placeholder="This conversation is read-only"'
            in page.text
        )
        r = await post_form(
            c, f"/messages/{conv['id']}", f"/messages/{conv['id']}/send", {"body": "hello?"}
        )
        assert r.status_code == 403 and "read-only" in html.unescape(r.text)

    # back on: everything resumes, and the audit log says who did what
    r = await set_mode(client, people, enabled=True)
    assert r.json()["mode"] == "on"
    assert (await send(client, people.plus, conv["id"], "now?")).status_code == 201
    r = await client.get(
        f"{API}/admin/audit", params={"action": "messaging.read_only"}, headers=people.admin.headers
    )
    assert [a["actor_id"] for a in r.json()] == [people.admin.id]
    async with signed_in(app, "admin") as c:
        page = html.unescape((await c.get("/admin")).text)
        assert "made messaging read-only" in page


async def test_the_switch_takes_one_state_at_a_time(client, people) -> None:
    for body in ({}, {"enabled": True, "mode": "off"}, {"mode": "sideways"}, {"mode": None}):
        r = await set_mode(client, people, **body)
        assert r.status_code == 422, body
    r = await client.put(
        f"{API}/admin/settings/messaging",
        json={"mode": "read_only"},
        headers=people.manager.headers,
    )
    assert r.status_code == 403


async def test_the_admin_page_switches_to_read_only_after_confirming(app, people) -> None:
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert 'id="switch-read-only"' in page and 'id="switch-off"' in page
        r = await post_form(c, "/admin", "/admin/messaging/toggle", {"mode": "read_only"})
        assert r.headers["location"] == "/admin/messaging/confirm?turn=read_only"
        confirm = await c.get(r.headers["location"])
        assert "Make messaging read-only for everyone?" in confirm.text
        r = await post_form(
            c,
            r.headers["location"],
            "/admin/messaging/toggle",
            {"mode": "read_only", "confirm": "yes"},
        )
        page = (await c.get(r.headers["location"])).text
        assert 'id="switch-state">read-only<' in page
        assert 'id="switch-on"' in page and 'id="switch-read-only"' not in page


def test_the_cli_sets_and_shows_read_only(pigeon):  # noqa: F811
    assert pigeon("db", "upgrade").exit_code == 0
    r = pigeon("messaging", "read-only")
    assert r.exit_code == 0 and "Messaging is read-only" in r.output, r.output
    assert "Created the messaging database." in r.output
    r = pigeon("messaging", "status")
    assert "Messaging is read-only since" in r.output
    r = pigeon("messaging", "enable")
    assert "Messaging is on" in r.output
