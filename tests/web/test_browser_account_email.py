"""The "verify your email" banner in a real browser: with script, "Resend the email" asks the
server and says so in place; without, the same button posts and lands on a page saying so."""

from __future__ import annotations

import re
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
