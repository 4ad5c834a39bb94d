"""The Invitations page in a real browser: the link shown once after sending copies with one
click; without script the button stays hidden and the link is there to select."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Server, expect

pytestmark = pytest.mark.browser


def send(page: Any, email: str) -> None:
    page.goto("/invitations")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invitation-sent")).to_contain_text(f"Invitation sent to {email}")


def test_the_link_copies_with_one_click(open_as: Any, server: Server) -> None:
    admin = open_as("admin")
    admin.context.grant_permissions(["clipboard-read", "clipboard-write"])
    send(admin, "copied@example.com")
    link = admin.locator("#invitation-link").input_value()
    assert link.startswith("http") and "/register?invitation=" in link
    admin.get_by_role("button", name="Copy link").click()
    expect(admin.get_by_role("button", name="Link copied")).to_be_visible()
    assert admin.evaluate("navigator.clipboard.readText()") == link


def test_without_script_the_link_is_there_to_select(open_as: Any, server: Server) -> None:
    admin = open_as("admin", js=False)
    send(admin, "plain@example.com")
    expect(admin.locator("#invitation-link")).to_be_visible()
    expect(admin.locator("#invitation-copy")).to_be_hidden()
