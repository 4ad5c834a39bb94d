"""In a real browser: the top bar fits a 360 px phone for every role, and the messaging switch
asks before it flips."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import PHONE, Server, api_client, expect, shot

# who, and the pages their top bar must fit on
ROLES = {
    "pat": ("/messages", "/u/pat", "/no/such/page"),
    "lena": ("/messages", "/admin/reports", "/u/lena"),
    "mira": ("/messages", "/admin/reports"),  # a manager with a two-digit unread badge
    "admin": ("/messages", "/admin", "/u/admin"),
}


def overflow(page: Any) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


@pytest.fixture(scope="module")
def mira_has_unread(server: Server) -> None:
    una = api_client(server, "una")
    try:
        conv = una.post("/conversations", json={"participant_ids": [server.ids["mira"]]}).json()
        for i in range(12):
            r = una.post(f"/conversations/{conv['id']}/messages", json={"body": f"news {i}"})
            assert r.status_code == 201, r.text
    finally:
        una.close()
    mira = api_client(server, "mira")  # they talk already: not a message request
    try:
        assert mira.post(f"/conversations/{conv['id']}/accept").status_code == 200
    finally:
        mira.close()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_top_bar_fits_a_phone_for_every_role(
    open_as: Any, dark: bool, mira_has_unread: None
) -> None:
    for username, paths in ROLES.items():
        page = open_as(username, viewport=PHONE, dark=dark)
        for path in paths:
            page.goto(path)
            assert overflow(page) <= 0, f"{username} on {path} scrolls sideways"
            last = page.locator(".nav > li:visible").last
            box = last.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"], (username, path)
            for link in page.locator(".nav a:visible").all():
                assert link.bounding_box()["height"] >= 44  # still a finger's size
            if path == "/admin":
                shot(page, "review-admin-phone" + ("-dark" if dark else ""))
        if username == "mira":
            expect(page.locator("#nav-unread")).to_contain_text("12")
        if username == "lena":
            expect(page.get_by_role("link", name="Reports")).to_be_visible()
            shot(page, "review-manager-nav-phone" + ("-dark" if dark else ""))
        # Sign out stays reachable on a phone: on one's profile
        page.goto(f"/u/{username}")
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_the_switch_asks_first(open_as: Any) -> None:
    admin = open_as("admin")
    admin.goto("/admin")
    expect(admin.locator("#switch-state")).to_have_text("on")
    admin.get_by_role("button", name="Turn messaging off").click()  # answered "Cancel"
    assert admin.dialogs and admin.dialogs[-1].startswith("Turn messaging off for everyone?")
    admin.goto("/admin")
    expect(admin.locator("#switch-state")).to_have_text("on")
    admin.accept_dialogs = True
    try:
        admin.get_by_role("button", name="Turn messaging off").click()
        expect(admin.locator("#switch-state")).to_have_text("off")
        expect(admin.locator(".audit li").first).to_contain_text("Ada Admin turned messaging off")
        admin.get_by_role("button", name="Turn messaging on").click()
        expect(admin.locator("#switch-state")).to_have_text("on")
        assert admin.dialogs[-1].startswith("Turn messaging on for everyone?")
    finally:
        admin.goto("/admin")
        if admin.locator("#switch-state").inner_text() == "off":
            admin.get_by_role("button", name="Turn messaging on").click()
            expect(admin.locator("#switch-state")).to_have_text("on")


def test_the_switch_without_script_goes_through_the_confirm_page(open_as: Any) -> None:
    admin = open_as("admin", js=False, viewport=PHONE)
    admin.goto("/admin")
    admin.get_by_role("button", name="Turn messaging off").click()
    expect(admin.get_by_role("heading", name="Turn messaging off for everyone?")).to_be_visible()
    assert overflow(admin) <= 0
    admin.get_by_role("link", name="Cancel").click()
    expect(admin.locator("#switch-state")).to_have_text("on")
    assert admin.dialogs == []
