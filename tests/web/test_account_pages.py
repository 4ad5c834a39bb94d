"""Changing the password and deleting the account from one's profile, without script."""

from __future__ import annotations

import html

from tests.support.people import PASSWORD, dm, send
from tests.web.support import browser, csrf_of, post_form, sign_in, signed_in

NEW = "a brand new passphrase"


def text(page: str) -> str:
    return html.unescape(page)


async def test_changing_the_password_signs_out_the_other_sessions(app, people) -> None:
    async with signed_in(app, "priv") as here, signed_in(app, "priv") as elsewhere:
        profile = (await here.get("/u/priv")).text
        assert 'action="/u/priv/password"' in profile
        r = await post_form(
            here, "/u/priv", "/u/priv/password", {"current_password": PASSWORD, "new_password": NEW}
        )
        assert r.status_code == 303
        shown = await here.get(r.headers["location"])
        assert "Password changed. Your other sessions were signed out." in shown.text
        assert (await here.get("/messages")).status_code == 200
        gone = await elsewhere.get("/messages")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    async with browser(app) as c:
        await sign_in(c, "priv", NEW)


async def test_password_errors_are_shown_in_place(app, people) -> None:
    async with signed_in(app, "priv") as c:
        wrong = await post_form(
            c, "/u/priv", "/u/priv/password", {"current_password": "nope", "new_password": NEW}
        )
        assert wrong.status_code == 403
        assert "That is not your current password." in text(wrong.text)
        assert '<details class="change-password" id="password" open>' in wrong.text
        weak = await post_form(
            c,
            "/u/priv",
            "/u/priv/password",
            {"current_password": PASSWORD, "new_password": "short"},
        )
        assert weak.status_code == 422
        assert "New password: Use at least 8 characters." in text(weak.text)
        empty = await post_form(c, "/u/priv", "/u/priv/password", {})
        assert empty.status_code == 422
        # a form without its CSRF token changes nothing
        r = await c.post(
            "/u/priv/password", data={"current_password": PASSWORD, "new_password": NEW}
        )
        assert r.status_code == 403
    async with browser(app) as c:
        await sign_in(c, "priv")  # the password is what it was


async def test_only_ones_own_account_pages_exist(app, people) -> None:
    async with signed_in(app, "priv") as c:
        assert (await c.get("/u/free/delete")).status_code == 404
        page = await c.get("/u/priv")
        r = await c.post(
            "/u/free/password",
            data={"current_password": PASSWORD, "new_password": NEW, "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 404


async def test_deleting_the_account_from_the_profile(app, client, people) -> None:
    conv = await dm(client, people.priv, people.plus)
    assert (await send(client, people.priv, conv["id"], "see you soon")).status_code == 201
    group = await client.post(
        "/api/v1/groups",
        json={"title": "Readers", "member_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    gid = group.json()["id"]
    assert (await send(client, people.priv, gid, "welcome all")).status_code == 201

    async with signed_in(app, "priv") as c:
        assert 'href="/u/priv/delete"' in (await c.get("/u/priv")).text
        page = await c.get("/u/priv/delete")
        assert page.status_code == 200
        assert 'name="messages" value="keep"' in page.text and 'name="password"' in page.text
        wrong = await post_form(
            c, "/u/priv/delete", "/u/priv/delete", {"password": "nope", "messages": "keep"}
        )
        assert wrong.status_code == 403
        assert "That is not your current password." in text(wrong.text)
        assert 'value="keep" required checked' in wrong.text  # the choice is kept
        unchosen = await post_form(c, "/u/priv/delete", "/u/priv/delete", {"password": PASSWORD})
        assert unchosen.status_code == 422
        r = await post_form(
            c, "/u/priv/delete", "/u/priv/delete", {"password": PASSWORD, "messages": "keep"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/login?deleted=1"
        assert "pigeon_session" not in c.cookies
        landed = await c.get(r.headers["location"])
        assert "Your account is deleted" in landed.text

    async with signed_in(app, "plus") as c:
        direct = text((await c.get(f"/messages/{conv['id']}")).text)
        assert "see you soon" in direct and "Deleted member" in direct
        assert "/u/~deleted" not in direct
        in_group = text((await c.get(f"/messages/{gid}")).text)
        assert "welcome all" in in_group
        assert '<span class="who" aria-hidden="true">Deleted member</span>' in in_group
        listing = text((await c.get("/messages")).text)
        assert "Deleted member" in listing
        found = text((await c.get("/messages/search?q=welcome")).text)
        assert "Deleted member" in found and "Former member" not in found


async def test_deleting_with_removal_shows_the_messages_as_deleted(app, client, people) -> None:
    conv = await dm(client, people.priv, people.plus)
    assert (await send(client, people.priv, conv["id"], "gone soon")).status_code == 201
    async with signed_in(app, "priv") as c:
        r = await post_form(
            c, "/u/priv/delete", "/u/priv/delete", {"password": PASSWORD, "messages": "remove"}
        )
        assert r.status_code == 303
    async with signed_in(app, "plus") as c:
        thread = (await c.get(f"/messages/{conv['id']}")).text
        assert "gone soon" not in thread and "Message deleted" in thread


async def test_the_last_admin_is_told_why_not(app, people) -> None:
    async with signed_in(app, "admin") as c:
        r = await post_form(
            c, "/u/admin/delete", "/u/admin/delete", {"password": PASSWORD, "messages": "keep"}
        )
        assert r.status_code == 409
        assert "last admin" in text(r.text)
        assert (await c.get("/u/admin")).status_code == 200
