"""The account's email through the pages, without script, against a real SMTP server: every
link is taken from the text of the email received, opened, and its button pressed."""

from __future__ import annotations

import html

import pytest
from httpx import AsyncClient

from pigeon.settings import Settings
from tests.support.mail import inbox, link_in, text_of, with_email
from tests.support.people import PASSWORD
from tests.support.smtp import SmtpServer
from tests.web.support import browser, csrf_of, post_form, sign_in, signed_in

NEW = "a brand new passphrase"
BANNER = 'id="verify-banner"'


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return with_email(settings, smtp)


def text(page: str) -> str:
    return html.unescape(page)


async def press(c: AsyncClient, path: str, token: str):  # type: ignore[no-untyped-def]
    """Open a link's page, then press its one button (a form posting the token back)."""
    page = await c.get(f"{path}?token={token}")
    assert page.status_code == 200, page.text
    assert f'name="token" value="{token}"' in page.text
    return await c.post(path, data={"token": token, "csrf_token": csrf_of(page)})


async def test_sign_up_verify_with_the_banner_until_then(app, smtp) -> None:
    async with browser(app) as c:
        page = await c.get("/register")
        r = await c.post(
            "/register",
            data={
                "email": "newbie@example.net",
                "username": "newbie",
                "password": PASSWORD,
                "display_name": "",
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 303
        profile = await c.get("/u/newbie")
        assert BANNER in profile.text and 'action="/verify-email/resend"' in profile.text
        [first] = await inbox(app, smtp, "newbie@example.net")

        r = await post_form(c, "/u/newbie", "/verify-email/resend", {})
        assert r.status_code == 303 and r.headers["location"] == "/verify-email/sent"
        assert "We sent a new link" in (await c.get(r.headers["location"])).text
        _, second = await inbox(app, smtp, "newbie@example.net")

        # opening the link spends nothing: only the button does
        path, token = link_in(second)
        assert (await c.get(f"{path}?token={token}")).status_code == 200
        r = await press(c, path, token)
        assert r.status_code == 303 and r.headers["location"] == "/verify-email/done"
        done = await c.get(r.headers["location"])
        assert "Your email address is verified" in done.text
        assert BANNER not in done.text
        assert BANNER not in (await c.get("/u/newbie")).text

        stale = await press(c, *link_in(first))
        assert stale.status_code == 400
        assert "This link has expired or was already used" in text(stale.text)


async def test_a_dead_verification_link_offers_a_new_one(app, people) -> None:
    async with signed_in(app, "free") as c:
        page = await c.get("/messages")
        assert BANNER in page.text  # the personas never verified their addresses
        dead = await c.post(
            "/verify-email", data={"token": "not-a-real-one", "csrf_token": csrf_of(page)}
        )
        assert dead.status_code == 400
        assert 'action="/verify-email/resend"' in dead.text
        cut_short = await c.get("/verify-email?token=")
        assert cut_short.status_code == 400 and 'action="/verify-email/resend"' in cut_short.text


async def test_forgot_and_reset_the_password(app, people, smtp) -> None:
    async with signed_in(app, "free") as elsewhere, browser(app) as c:
        login = await c.get("/login")
        assert 'href="/password/forgot"' in login.text
        for email in ("free@example.com", "nobody@example.com"):
            r = await post_form(c, "/password/forgot", "/password/forgot", {"email": email})
            assert r.status_code == 303 and r.headers["location"] == "/password/forgot/sent"
        sent = await c.get("/password/forgot/sent")
        assert "If an account uses that address, we sent it a link" in sent.text
        bad = await post_form(c, "/password/forgot", "/password/forgot", {"email": "not mail"})
        assert bad.status_code == 422 and "Enter the email address" in bad.text
        assert 'value="not mail"' in bad.text

        [mail] = await inbox(app, smtp, "free@example.com")
        path, token = link_in(mail)
        form = await c.get(f"{path}?token={token}")
        assert form.status_code == 200 and 'name="password_again"' in form.text
        tries = [
            ({"password": NEW, "password_again": NEW + "!"}, "The two passwords are not the same."),
            ({"password": "password123", "password_again": "password123"}, "most common"),
        ]
        for data, says in tries:
            r = await c.post(path, data={**data, "token": token, "csrf_token": csrf_of(form)})
            assert r.status_code == 422 and says in text(r.text)
        r = await c.post(
            path,
            data={
                "password": NEW,
                "password_again": NEW,
                "token": token,
                "csrf_token": csrf_of(form),
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/login?reset=1"
        landed = await c.get(r.headers["location"])
        assert "Your password is changed" in landed.text

        gone = await elsewhere.get("/messages")
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
        await sign_in(c, "free", NEW)
        assert BANNER not in (await c.get("/u/free")).text  # a reset proves the address too

        dead = await c.get(f"{path}?token={token}")
        assert dead.status_code == 400
        assert "This link has expired or was already used" in text(dead.text)
        assert 'href="/password/forgot"' in dead.text


async def test_change_the_email_from_the_profile(app, people, smtp) -> None:
    async with signed_in(app, "priv") as c:
        profile = await c.get("/u/priv")
        assert 'action="/u/priv/email"' in profile.text and "priv@example.com" in profile.text
        wrong = await post_form(
            c, "/u/priv", "/u/priv/email", {"email": "priv@new.example", "password": "nope"}
        )
        assert wrong.status_code == 403
        assert "That is not your current password." in text(wrong.text)
        assert '<details class="change-email" id="email" open>' in wrong.text
        assert 'value="priv@new.example"' in wrong.text
        invalid = await post_form(
            c, "/u/priv", "/u/priv/email", {"email": "nope", "password": PASSWORD}
        )
        assert invalid.status_code == 422

        r = await post_form(
            c, "/u/priv", "/u/priv/email", {"email": "priv@new.example", "password": PASSWORD}
        )
        assert r.status_code == 303
        shown = text((await c.get(r.headers["location"])).text)
        assert "Check the inbox of the new address" in shown
        assert "Waiting for you to confirm priv@new.example" in " ".join(
            shown.replace("<strong>", "").replace("</strong>", "").split()
        )
        assert "Your email address is <strong>priv@example.com</strong>" in shown

        [mail] = await inbox(app, smtp, "priv@new.example")
        async with browser(app) as phone:  # the link opened where nobody is signed in
            r = await press(phone, *link_in(mail))
            assert r.status_code == 303 and r.headers["location"] == "/confirm-email/done"
            done = await phone.get(r.headers["location"])
            assert "Your account now uses its new email address" in done.text
        profile = text((await c.get("/u/priv")).text)
        assert "Your email address is <strong>priv@new.example</strong> (verified)" in profile
        assert 'id="pending-email"' not in profile
        [notice] = await inbox(app, smtp, "priv@example.com")
        assert "p•••@new.example" in text_of(notice)
    async with browser(app) as c:
        await sign_in(c, "priv@new.example")


async def test_the_forms_need_their_csrf_token(app, people) -> None:
    async with browser(app) as c:
        await c.get("/password/forgot")
        r = await c.post("/password/forgot", data={"email": "free@example.com"})
        assert r.status_code == 403
    async with signed_in(app, "priv") as c:
        r = await c.post("/u/priv/email", data={"email": "x@example.org", "password": PASSWORD})
        assert r.status_code == 403
        assert (await c.post("/verify-email/resend")).status_code == 403
