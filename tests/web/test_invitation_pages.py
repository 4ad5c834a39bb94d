"""Invitations in the pages, without script: staff send one from the Invitations page and see
the link once; the link in the received email opens a register page for that address and
community; an existing member accepts or declines; a closed server's sign-up is no dead end."""

from __future__ import annotations

import html
import re

import pytest
from httpx import AsyncClient

from pigeon.email import worker
from pigeon.settings import Settings
from tests.support.mail import PUBLIC_URL, with_email
from tests.support.people import PASSWORD
from tests.support.smtp import SmtpServer, smtp  # noqa: F401
from tests.web.support import browser, csrf_of, post_form, signed_in

LINK = re.compile(re.escape(PUBLIC_URL) + r"(/[^\s]+)")


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:  # noqa: F811
    return with_email(settings, smtp, registration="invite")


async def emailed_path(app, smtp: SmtpServer, to: str) -> str:  # type: ignore[no-untyped-def]  # noqa: F811
    """The path of the link in the text body of the email `to` received."""
    await worker.deliver_exclusive(app.state.runtime)
    [msg] = [m for m in smtp.messages if m["To"] == to]
    text = msg.get_body(("plain",))
    assert text is not None
    found = LINK.search(text.get_content())
    assert found, text.get_content()
    return found.group(1)


async def send_from_page(c: AsyncClient, email: str, community: str, tier: str) -> str:
    page = await c.get("/invitations")
    assert page.status_code == 200
    options = dict(
        (name, value)
        for value, name in re.findall(r'<option value="(\d+)"[^>]*>([^<]+)</option>', page.text)
    )
    r = await c.post(
        "/invitations",
        data={
            "email": email,
            "community_id": options[community],
            "tier": tier,
            "csrf_token": csrf_of(page),
        },
    )
    assert r.status_code == 200, r.text
    return r.text


async def test_an_invitation_sent_from_the_page_registers_the_person_by_its_link(
    app,
    people,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    async with signed_in(app, "admin") as c:
        sent = await send_from_page(c, "fresh@example.com", "Riverside", "privileged")
        assert "Invitation sent to fresh@example.com" in sent
        shown = re.search(r'id="invitation-link" readonly value="([^"]+)"', sent)
        assert shown is not None
        # the list shows it as pending, and never the link again
        listing = await c.get("/invitations")
        assert "fresh@example.com" in listing.text and "pending" in listing.text
        assert html.escape(shown.group(1)) not in listing.text

    path = await emailed_path(app, smtp, "fresh@example.com")
    assert PUBLIC_URL + path == html.unescape(shown.group(1))
    async with browser(app) as c:
        page = await c.get(path)
        assert page.status_code == 200
        assert "Join Riverside" in page.text
        assert re.search(r'name="email"[^>]*value="fresh@example.com"[^>]*readonly', page.text)
        token = re.search(r'name="invitation_token" value="([^"]+)"', page.text)
        assert token is not None
        r = await c.post(
            "/register",
            data={
                "email": "fresh@example.com",
                "username": "fresh",
                "password": PASSWORD,
                "invitation_token": token.group(1),
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/messages"
        me = await c.get("/api/v1/auth/me")
        assert me.json()["tier"] == "privileged"
        assert [x["slug"] for x in me.json()["communities"]] == ["riverside"]
    async with browser(app) as c:  # used: the link now says so, and offers no form
        page = await c.get(path)
        assert "not valid" in page.text and 'name="invitation_token"' not in page.text


async def test_a_closed_server_explains_itself_and_refuses_sign_up(app, people) -> None:
    async with browser(app) as c:
        page = await c.get("/register")
        assert "Registration is closed" in page.text and 'href="/login"' in page.text
        assert 'name="password"' not in page.text
        r = await c.post(
            "/register",
            data={
                "email": "n@example.com",
                "username": "nobody",
                "password": PASSWORD,
                "csrf_token": csrf_of(page),
            },
        )
        assert r.status_code == 403 and "by invitation only" in r.text


async def test_an_existing_member_accepts_from_the_link_and_declines_from_the_profile(
    app,
    people,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    async with signed_in(app, "admin") as c:
        await send_from_page(c, "outsider@example.com", "The Store", "free")
    path = await emailed_path(app, smtp, "outsider@example.com")
    assert path.startswith("/invitations/")
    async with browser(app) as c:  # signed out: sign in first, then come back
        r = await c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
    async with signed_in(app, "free") as c:  # someone else's invitation: no buttons
        page = await c.get(path)
        assert "This invitation is for outsider@example.com" in page.text
        assert "/me/invitations/accept" not in page.text
    async with signed_in(app, "outsider") as c:
        profile = await c.get("/u/outsider")
        assert "You are invited to join <strong>The Store</strong>" in profile.text
        page = await c.get(path)
        assert "Join The Store?" in page.text
        invitation_id = re.search(r'name="invitation_id" value="(\d+)"', page.text)
        assert invitation_id is not None
        r = await c.post(
            "/me/invitations/accept",
            data={"invitation_id": invitation_id.group(1), "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 303
        profile = await c.get(r.headers["location"])
        assert "You joined the community" in profile.text
        me = await c.get("/api/v1/auth/me")
        assert sorted(x["slug"] for x in me.json()["communities"]) == ["riverside", "store"]

    async with signed_in(app, "admin") as c:  # a second one, declined from the profile
        await send_from_page(c, "free@example.com", "Riverside", "privileged")
    async with signed_in(app, "free") as c:
        profile = await c.get("/u/free")
        found = re.search(r'name="invitation_id" value="(\d+)"', profile.text)
        assert found is not None
        r = await post_form(
            c, "/u/free", "/me/invitations/decline", {"invitation_id": found.group(1)}
        )
        assert r.status_code == 303
        profile = await c.get(r.headers["location"])
        assert "Invitation declined" in profile.text and "You are invited" not in profile.text
        me = await c.get("/api/v1/auth/me")
        assert [x["slug"] for x in me.json()["communities"]] == ["store"]


async def test_managers_revoke_from_the_page_and_members_have_no_such_page(app, people) -> None:
    async with signed_in(app, "manager") as c:
        page = await c.get("/invitations")
        assert 'value="privileged"' not in page.text  # managers give no tier above free
        assert "Riverside" not in page.text  # nor invite outside their communities
        await send_from_page(c, "walkin@example.com", "The Store", "free")
        listing = await c.get("/invitations?state=pending")
        found = re.search(r'action="/invitations/(\d+)/revoke"', listing.text)
        assert found is not None
        r = await post_form(c, "/invitations", f"/invitations/{found.group(1)}/revoke", {})
        assert r.status_code == 303
        after = await c.get(r.headers["location"])
        assert "Invitation revoked" in after.text and "revoked" in after.text
        bad = await post_form(c, "/invitations", "/invitations", {"email": "not an address"})
        assert bad.status_code == 422 and "Enter an email address" in bad.text
    async with signed_in(app, "free") as c:
        assert (await c.get("/invitations")).status_code == 403
