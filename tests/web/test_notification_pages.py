"""Notification settings and the unsubscribe link from the pages, without script: one's own
settings page from the profile, saved by a plain form, and the page a digest's link opens, which
asks before it turns anything off."""

from __future__ import annotations

from pigeon.accounts import notifications
from tests.web.support import browser, post_form, signed_in

API = "/api/v1"


async def test_the_settings_page_from_the_profile_round_trips_with_the_api(
    app, client, people
) -> None:
    async with signed_in(app, "free") as c:
        profile = (await c.get("/u/free")).text
        assert 'href="/u/free/notifications"' in profile
        page = (await c.get("/u/free/notifications")).text
        assert 'name="email_digest" value="1" aria-describedby="digest-help" checked' in page
        assert "never what they say" in page and "Muted conversations" in page

        r = await post_form(c, "/u/free/notifications", "/u/free/notifications", {})
        assert r.status_code == 303
        assert r.headers["location"] == "/u/free/notifications?notice=saved"
        page = (await c.get(r.headers["location"])).text
        assert "Your notification settings are saved." in page
        assert 'aria-describedby="digest-help">' in page  # unchecked now
        api = await client.get(f"{API}/me/notifications", headers=people.free.headers)
        assert api.json() == {"email_digest": False}

        await client.patch(
            f"{API}/me/notifications", json={"email_digest": True}, headers=people.free.headers
        )
        page = (await c.get("/u/free/notifications")).text
        assert 'aria-describedby="digest-help" checked' in page

        short = await c.get("/notifications")  # the address emails link to
        assert short.status_code == 303 and short.headers["location"] == "/u/free/notifications"


async def test_only_ones_own_settings_and_only_with_a_csrf_token(app, client, people) -> None:
    async with signed_in(app, "priv") as c:
        assert (await c.get("/u/free/notifications")).status_code == 404
        r = await post_form(c, "/u/priv/notifications", "/u/free/notifications", {})
        assert r.status_code == 404
        forged = await c.post("/u/priv/notifications", data={"csrf_token": "nope"})
        assert forged.status_code == 403
    for who in (people.free, people.priv):
        api = await client.get(f"{API}/me/notifications", headers=who.headers)
        assert api.json() == {"email_digest": True}
    async with browser(app) as c:  # signed out: to the sign-in page, then back here
        r = await c.get("/notifications")
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


async def test_the_unsubscribe_page_asks_then_says_it_is_done(app, client, people) -> None:
    token = notifications.unsubscribe_token(app.state.runtime.settings, people.free.id)
    async with browser(app) as c:  # from the email: not signed in
        page = await c.get(f"/unsubscribe/{token}")
        assert page.status_code == 200
        assert "Stop digest emails?" in page.text
        assert f'action="/unsubscribe/{token}"' in page.text
        # opening the link (or a scanner fetching it) turns nothing off
        api = await client.get(f"{API}/me/notifications", headers=people.free.headers)
        assert api.json() == {"email_digest": True}

        r = await c.post(f"/unsubscribe/{token}", data={"from": "page"})
        assert r.status_code == 303 and r.headers["location"] == f"/unsubscribe/{token}?done=1"
        done = await c.get(r.headers["location"])
        assert "You will get no more digest emails" in done.text
        assert 'href="/notifications"' in done.text
    api = await client.get(f"{API}/me/notifications", headers=people.free.headers)
    assert api.json() == {"email_digest": False}


async def test_a_bad_unsubscribe_link_gets_a_clear_page(app, people) -> None:
    async with browser(app) as c:
        for path in (
            f"/unsubscribe/digest.{people.free.id}.forged",
            "/unsubscribe/nonsense",
            "/unsubscribe/" + "a" * 300,
        ):
            for r in (await c.get(path), await c.post(path, data={"from": "page"})):
                assert r.status_code == 404, (path, r.status_code)
                assert "<html" in r.text and "Traceback" not in r.text
        r = await c.get(f"/unsubscribe/digest.{people.free.id}.forged")
        assert "This unsubscribe link is not valid" in r.text
