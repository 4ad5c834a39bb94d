"""The "verify your email" banner in a real browser: with script, "Resend the email" asks the
server and says so in place; without, the same button posts and lands on a page saying so."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.web.conftest import (
    DESKTOP,
    PASSWORD,
    PHONE,
    Server,
    assert_no_reload,
    expect,
    mark_no_reload,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def newcomer(chromium: Any, server: Server) -> Iterator[Any]:
    """newcomer(js=True, viewport=DESKTOP) -> a page signed in as someone who just signed up
    (through the API) and has not verified their address."""
    contexts: list[Any] = []

    def _open(*, js: bool = True, viewport: dict[str, int] = DESKTOP) -> Any:
        name = "new" + uuid.uuid4().hex[:8]
        r = httpx.post(
            f"{server.url}/api/v1/auth/register",
            json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
        )
        assert r.status_code == 201, r.text
        context = chromium.new_context(
            java_script_enabled=js, viewport=viewport, base_url=server.url
        )
        context.set_default_timeout(8000)
        contexts.append(context)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Username or email").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/messages$"))
        page.newcomer = name
        return page

    yield _open
    for context in contexts:
        context.close()


def test_resend_from_the_banner_without_leaving_the_page(newcomer: Any) -> None:
    page = newcomer(viewport=PHONE)
    mark_no_reload(page)
    banner = page.locator("#verify-banner")
    expect(banner).to_contain_text("Please verify your email address")
    page.get_by_role("button", name="Resend the email").click()
    expect(banner).to_contain_text(f"We sent a new link to {page.newcomer}@example.com.")
    expect(page.get_by_role("button", name="Resend the email")).to_be_hidden()
    assert_no_reload(page)


def test_resend_without_script(newcomer: Any) -> None:
    page = newcomer(js=False)
    page.get_by_role("button", name="Resend the email").click()
    page.wait_for_url(re.compile(r"/verify-email/sent$"))
    expect(page.locator("#account-done")).to_contain_text("We sent a new link")
    expect(page.locator("#verify-banner")).to_be_visible()  # still: nothing is verified yet


def queued_link(server: Server, to: str) -> str:
    """The link in the newest email queued for `to` (this server sends none: no SMTP host)."""
    assert server.data is not None
    with sqlite3.connect(server.data / "app.db") as db:
        row = db.execute(
            "SELECT text_body FROM outbox_email WHERE to_address = ? ORDER BY id DESC LIMIT 1",
            (to,),
        ).fetchone()
    assert row, f"nothing queued for {to}"
    found = re.search(r"https?://\S+?(/password/reset\?token=[A-Za-z0-9_-]+)", row[0])
    assert found, row[0]
    return found.group(1)


def test_the_reset_form_wants_the_same_password_twice(newcomer: Any, server: Server) -> None:
    page = newcomer(viewport=PHONE)
    email = f"{page.newcomer}@example.com"
    page.goto("/login")  # signed in, the sign-in page moves on; the link is on its way out
    page.goto("/password/forgot")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_role("button", name="Send me a link").click()
    page.wait_for_url(re.compile(r"/password/forgot/sent$"))

    page.goto(queued_link(server, email))
    mark_no_reload(page)
    page.get_by_label("New password", exact=True).fill("a long new passphrase")
    page.get_by_label("The new password again").fill("a long new passphrase!")
    page.get_by_role("button", name="Set the new password").click()
    again = page.get_by_label("The new password again")
    assert again.evaluate("e => e.validationMessage") == "The two passwords are not the same."
    assert_no_reload(page)  # the browser kept the form: nothing was sent

    again.fill("a long new passphrase")
    page.get_by_role("button", name="Set the new password").click()
    page.wait_for_url(re.compile(r"/login\?reset=1$"))
    expect(page.locator(".notice")).to_contain_text("Your password is changed")
