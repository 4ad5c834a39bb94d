"""Admin and error pages without script: suspensions seen and lifted, the switch's confirm
page, the audit log as sentences, and error pages that say what happened and lead on."""

from __future__ import annotations

import re

from pigeon.core.errors import RateLimited
from pigeon.messaging import service as messaging
from tests.support.people import PASSWORD, dm
from tests.web.support import browser, csrf_of, post_form, signed_in

API = "/api/v1"
NAV = 'aria-label="Main"'


async def suspend_by_api(client, people, who, until=None):  # type: ignore[no-untyped-def]
    body = {"until": until} if until else {}
    r = await client.post(
        f"{API}/admin/users/{who.id}/suspend", json=body, headers=people.admin.headers
    )
    assert r.status_code == 200, r.text


async def can_sign_in(app, username: str) -> bool:  # type: ignore[no-untyped-def]
    async with browser(app) as c:
        page = await c.get("/login")
        r = await c.post(
            "/login", data={"login": username, "password": PASSWORD, "csrf_token": csrf_of(page)}
        )
        return r.status_code == 303


async def test_admin_sees_and_lifts_a_suspension_in_the_people_table(app, client, people):
    await suspend_by_api(client, people, people.free, until="2031-03-04T10:00:00Z")
    await suspend_by_api(client, people, people.free2)
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        row = page[page.index(f'id="user-{people.free.id}"') :]
        row = row[: row.index("</tr>")]
        assert "Suspended until 4 Mar 2031 10:00" in row
        assert f'action="/admin/users/{people.free.id}/lift"' in row and "data-confirm" in row
        assert "Suspended indefinitely" in page
        back = f"/admin#user-{people.free.id}"
        assert f'name="back" value="{back}"' in row
        r = await post_form(c, "/admin", f"/admin/users/{people.free.id}/lift", {"back": back})
        assert r.status_code == 303
        assert r.headers["location"] == f"/admin?notice=lifted#user-{people.free.id}"
        page = (await c.get(r.headers["location"])).text
        assert "Suspension lifted." in page
        assert "Suspended until 4 Mar 2031" not in page
        assert "Admin lifted Free&#39;s suspension" in page  # the audit log, as a sentence
    assert await can_sign_in(app, "free")  # at once, as if it had ended
    assert not await can_sign_in(app, "free2")
    [entry, *_] = (
        await client.get(
            f"{API}/admin/audit",
            params={"action": "user.unsuspended"},
            headers=people.admin.headers,
        )
    ).json()
    assert entry["target_id"] == people.free.id and entry["actor_id"] == people.admin.id


async def test_admin_suspends_from_the_table_for_a_chosen_time(app, client, people, clock):
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert f'action="/admin/users/{people.admin.id}/suspend"' not in page  # not oneself
        r = await post_form(
            c, "/admin", f"/admin/users/{people.priv.id}/suspend", {"for": "7d", "back": "/admin"}
        )
        assert r.status_code == 303
        page = (await c.get("/admin")).text
        assert "Admin suspended Priv until" in page
        bad = await post_form(
            c, "/admin", f"/admin/users/{people.plus.id}/suspend", {"for": "forever!"}
        )
        assert bad.status_code == 422 and "Pick how long the suspension lasts." in bad.text
        assert NAV in bad.text  # said in place, on the admin page
    r = await client.get(f"{API}/auth/me", headers=people.priv.headers)
    assert r.json()["error"]["code"] == "account_suspended"
    assert await can_sign_in(app, "plus")


async def test_the_profile_shows_a_suspension_to_staff_with_lift(app, client, people):
    await suspend_by_api(client, people, people.free)
    async with signed_in(app, "manager") as c:
        page = (await c.get("/u/free")).text
        assert "Suspended indefinitely" in page and "Lift suspension" in page
        admin_profile = (await c.get("/u/admin")).text  # outranks the manager: nothing to do
        assert "Suspend" not in admin_profile
        r = await post_form(
            c, "/u/free", f"/admin/users/{people.free.id}/lift", {"back": "/u/free"}
        )
        assert r.headers["location"] == "/u/free?notice=lifted"
        page = (await c.get(r.headers["location"])).text
        assert "Suspension lifted." in page and "Suspended indefinitely" not in page
        assert 'name="for"' in page  # and may suspend again, with a reason
        r = await post_form(
            c,
            "/u/free",
            f"/admin/users/{people.free.id}/suspend",
            {"for": "1d", "reason": "spam", "back": "/u/free"},
        )
        assert r.headers["location"] == "/u/free?notice=suspended"
        assert "Suspended until" in (await c.get("/u/free")).text
        # a manager acting on someone they may not: refused by the service, said in place
        r = await post_form(
            c, "/u/free", f"/admin/users/{people.admin.id}/lift", {"back": "/u/admin"}
        )
        assert r.status_code == 403 and "Only admins can suspend" in r.text
    async with signed_in(app, "priv") as c:
        page = (await c.get("/u/free")).text
        assert "Suspended" not in page and "Lift suspension" not in page
        r = await post_form(c, "/u/free", f"/admin/users/{people.free.id}/lift", {})
        assert r.status_code == 403
    assert not await can_sign_in(app, "free")


async def test_the_switch_goes_through_a_confirm_page(app, client, people):
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert 'data-confirm="Turn messaging off for everyone?' in page
        r = await post_form(c, "/admin", "/admin/messaging/toggle", {"enabled": "off"})
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/messaging/confirm?turn=off"
        confirm = await c.get(r.headers["location"])
        assert "Turn messaging off for everyone?" in confirm.text
        assert "Members keep their history; nothing new can be sent" in confirm.text
        assert 'href="/admin">Cancel</a>' in confirm.text and NAV in confirm.text
        still = await client.get(f"{API}/admin/settings/messaging", headers=people.admin.headers)
        assert still.json()["enabled"] is True  # nothing changed before the confirmation
        r = await c.post(
            "/admin/messaging/toggle",
            data={"enabled": "off", "confirm": "yes", "csrf_token": csrf_of(confirm)},
        )
        assert r.headers["location"] == "/admin?notice=messaging_off"
        page = (await c.get("/admin")).text
        assert "Admin turned messaging off" in page and "False" not in page
        on = await c.get("/admin/messaging/confirm?turn=on")
        assert "Turn messaging on for everyone?" in on.text
    r = await client.get(f"{API}/admin/settings/messaging", headers=people.admin.headers)
    assert r.json()["enabled"] is False
    async with signed_in(app, "manager") as c:
        assert (await c.get("/admin/messaging/confirm?turn=off")).status_code == 403


async def test_error_pages_say_what_happened_keep_the_nav_and_lead_on(app, client, people):
    theirs = await dm(client, people.priv, people.free2)
    async with signed_in(app, "free") as c:
        r = await c.get(f"/messages/{theirs['id']}")  # exists, but not theirs
        assert r.status_code == 404
        assert "This conversation does not exist or you are not in it" in r.text
        assert NAV in r.text and 'href="/messages">Back to Messages' in r.text
        missing = await c.get("/messages/99999")
        assert missing.status_code == 404 and "does not exist or you are not in it" in missing.text
        r = await c.get("/u/nobody-here")
        assert r.status_code == 404 and "We could not find that person" in r.text
        r = await c.get("/no/such/page")
        assert r.status_code == 404 and "This page does not exist" in r.text
        assert NAV in r.text and 'href="/u/free"' in r.text  # the viewer is known here too
        r = await c.get("/admin")
        assert r.status_code == 403 and "This page is for admins" in r.text
        assert 'href="/messages">Back to Messages' in r.text
        r = await c.get("/admin/reports")
        assert r.status_code == 403 and "This page is for managers and admins" in r.text
    async with browser(app) as anonymous:
        r = await anonymous.get("/no/such/page")
        assert r.status_code == 404 and 'href="/login">Sign in' in r.text


async def test_rate_limited_page_says_when_to_try_again(app, client, people, monkeypatch):
    async def limited(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RateLimited(42)

    async with signed_in(app, "priv") as c:
        monkeypatch.setattr(messaging, "start_direct", limited)
        r = await post_form(c, "/u/plus", "/u/plus/message", {})
        assert r.status_code == 429 and r.headers["retry-after"] == "42"
        assert "Slow down a little" in r.text and "Try again in 42 seconds" in r.text
        assert NAV in r.text and 'href="/messages">Back to Messages' in r.text

    async def nearly_over(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RateLimited(1)

    async with signed_in(app, "priv") as c:
        monkeypatch.setattr(messaging, "start_direct", nearly_over)
        r = await post_form(c, "/u/plus", "/u/plus/message", {})
        assert r.status_code == 429 and "Try again in 1 second." in r.text


async def test_messaging_off_explains_and_leads_somewhere_that_works(app, client, people):
    r = await client.put(
        f"{API}/admin/settings/messaging", json={"enabled": False}, headers=people.admin.headers
    )
    assert r.status_code == 200
    async with signed_in(app, "priv") as c:
        r = await c.get("/messages")
        assert r.status_code == 403
        text = re.sub(r"\s+", " ", r.text)
        assert "Messaging is switched off" in text
        assert "switched messaging off for now" in text and "Nothing is lost" in text
        assert 'href="/u/priv">Your profile' in text and NAV in text
        home = await c.get("/")
        assert home.headers["location"] == "/u/priv"  # home is no dead end while it is off
        assert (await c.get("/u/priv")).status_code == 200
    async with signed_in(app, "admin") as c:
        r = await c.get("/messages")
        assert 'href="/admin">Turn messaging on in Admin' in r.text
    # the API keeps its envelope
    r = await client.get(f"{API}/conversations", headers=people.priv.headers)
    assert r.json()["error"]["code"] == "messaging_disabled"


async def test_the_navigation_marks_where_one_is(app, people) -> None:
    from tests.web.support import signed_in

    async with signed_in(app, "manager") as c:
        page = (await c.get("/admin/reports")).text
        assert 'href="/admin/reports" aria-current="page">Reports' in page
        own = (await c.get("/u/manager")).text
        assert 'href="/u/manager" aria-current="page">Profile' in own
        other = (await c.get("/u/free")).text
        assert 'aria-current="page">Profile' not in other
