"""The moderation queue in the web UI, with script off: the admin page and the managers' page."""

from __future__ import annotations

from tests.support.people import dm, send
from tests.web.support import post_form, signed_in

API = "/api/v1"


async def reported(client, people, body: str) -> dict:  # type: ignore[no-untyped-def, type-arg]
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], body)).json()
    r = await client.post(
        f"{API}/messages/{msg['id']}/report",
        json={"reason": "harassment", "details": "keeps doing it"},
        headers=people.free.headers,
    )
    assert r.status_code == 201
    return r.json()


async def test_admins_resolve_reports_from_the_admin_page(app, client, people):
    rep = await reported(client, people, "<b>rude</b> words")
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert f'id="report-{rep["id"]}"' in page
        assert "&lt;b&gt;rude&lt;/b&gt; words" in page and "keeps doing it" in page
        r = await post_form(
            c,
            "/admin",
            f"/admin/reports/{rep['id']}/resolve",
            {"action": "delete_message", "back": "/admin", "note": "over the line"},
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/admin?notice=resolved")
        page = (await c.get(r.headers["location"])).text
        assert "Report resolved." in page and 'id="reports-empty"' in page
    r = await client.get(f"{API}/admin/reports/{rep['id']}", headers=people.admin.headers)
    assert r.json()["action"] == "delete_message" and r.json()["message_state"] == "deleted"


async def test_managers_have_a_reports_page_and_members_do_not(app, client, people):
    rep = await reported(client, people, "threatening")
    async with signed_in(app, "manager") as c:
        page = await c.get("/messages")
        assert 'href="/admin/reports"' in page.text
        page = await c.get("/admin/reports")
        assert page.status_code == 200 and "threatening" in page.text
        r = await post_form(
            c,
            "/admin/reports",
            f"/admin/reports/{rep['id']}/resolve",
            {"action": "suspend_author", "until": "not a day", "back": "/admin/reports"},
        )
        assert r.status_code == 422 and "Pick the day" in r.text
        r = await post_form(
            c,
            "/admin/reports",
            f"/admin/reports/{rep['id']}/resolve",
            {"action": "suspend_author", "until": "2031-05-01", "back": "/admin/reports"},
        )
        assert r.status_code == 303
        page = (await c.get("/admin/reports?status=resolved")).text
        assert "suspend author" in page
    r = await client.get(f"{API}/users/{people.priv.id}", headers=people.admin.headers)
    assert r.json()["suspended_until"].startswith("2031-05-01T23:59:59")
    async with signed_in(app, "free2") as c:
        assert (await c.get("/admin/reports")).status_code == 403


async def test_a_thread_tells_each_participant_how_long_messages_stay(app, client, people):
    conv = await dm(client, people.plus, people.free)
    await send(client, people.plus, conv["id"], "hello")
    for name, days in (("free", 30), ("plus", 365)):
        async with signed_in(app, name) as c:
            page = (await c.get(f"/messages/{conv['id']}")).text
            assert f"Messages older than {days} days are removed." in page


async def test_the_queue_page_shows_a_reported_messages_files(app, client, people):
    from tests.media import samples
    from tests.media.test_attachments_api import uploaded

    conv = await dm(client, people.priv, people.free)
    photo = await uploaded(client, people.priv, samples.png(), "evidence.png")
    msg = (await send(client, people.priv, conv["id"], "", attachment_ids=[photo["id"]])).json()
    r = await client.post(
        f"{API}/messages/{msg['id']}/report", json={"reason": "spam"}, headers=people.free.headers
    )
    report_id = r.json()["id"]
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin/reports")).text
        link = f"/api/v1/admin/reports/{report_id}/files/{photo['id']}"
        assert f'href="{link}"' in page and "evidence.png" in page
        assert f'src="{link}/thumbnail"' in page
        assert (await c.get(link)).status_code == 200  # with the page's own session


async def test_a_report_on_a_person_reads_as_one_in_the_queue(app, client, people):
    r = await client.post(
        f"{API}/users/{people.priv.id}/report",
        json={"reason": "harassment", "details": "rude in person"},
        headers=people.free.headers,
    )
    report_id = r.json()["id"]
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin/reports")).text
        start = page.index(f'id="report-{report_id}"')
        item = page[start : page.index("</li>", start)]
        assert "Reported person" in item and 'href="/u/priv"' in item
        assert 'value="delete_message"' not in item and "Suspend them" in item
