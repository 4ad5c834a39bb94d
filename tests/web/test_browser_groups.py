"""A group's info page in a real browser: reached from the thread's menu, the owner renames the
group, adds someone and removes them (whose open thread then says they are out), and a member
leaves while the owner's page follows along. Then the same by keyboard on a phone, dark, with
script off."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import pytest

from tests.web.conftest import PASSWORD, PHONE, Server, api_client, expect, mark_no_reload, shot

pytestmark = pytest.mark.browser


def person(server: Server, username: str, name: str, tier: str = "free") -> int:
    """Someone new, through the API, so that no other browser test's people change."""
    with closing(api_client(server, "admin")) as admin:
        r = admin.post(
            "/auth/register",
            json={
                "email": f"{username}@example.com",
                "username": username,
                "password": PASSWORD,
                "display_name": name,
            },
        )
        assert r.status_code == 201, r.text
        user_id = int(r.json()["user"]["id"])
        if tier != "free":
            assert admin.patch(f"/admin/users/{user_id}", json={"tier": tier}).status_code == 200
    return user_id


def group(server: Server, owner: str, title: str, member_ids: list[int]) -> int:
    with closing(api_client(server, owner)) as api:
        r = api.post("/groups", json={"title": title, "member_ids": member_ids})
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


def test_manage_a_group_from_its_info_page(open_as: Any, server: Server) -> None:
    person(server, "gwen", "Gwen Gardener", tier="privileged")
    gil = person(server, "gil", "Gil Grower")
    person(server, "gus", "Gus Newcomer")
    gid = group(server, "gwen", "Garden club", [gil])

    owner = open_as("gwen")
    owner.goto(f"/messages/{gid}")
    owner.locator(".convo-menu summary").click()
    owner.get_by_role("link", name="Group info", exact=True).click()
    owner.wait_for_url(f"**/messages/{gid}/info")
    expect(owner.get_by_role("heading", level=1)).to_have_text("Garden club")

    owner.get_by_label("Group name").fill("Garden society")
    owner.get_by_role("button", name="Rename").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text("Garden society")
    expect(owner.get_by_role("status")).to_have_text("The group's name is saved.")

    owner.get_by_label("Find people in your communities").fill("gus")
    owner.get_by_role("button", name="Search").click()
    owner.get_by_role("checkbox", name="Add Gus Newcomer").check()
    owner.get_by_role("button", name="Add to group").click()
    members = owner.locator("#group-members")
    expect(members).to_contain_text("Gus Newcomer")
    shot(owner, "group-info-desktop")

    gus = open_as("gus")  # Gus has the group open when he is removed
    gus.goto(f"/messages/{gid}")
    expect(gus.locator("#thread-title")).to_have_text("Garden society")
    mark_no_reload(gus)

    remove = owner.get_by_role("button", name="Remove Gus Newcomer from the group")
    remove.click()  # asked first; the browser fixture says no
    assert owner.dialogs == ["Remove Gus Newcomer from the group?"]
    expect(members).to_contain_text("Gus Newcomer")
    owner.evaluate("window.confirm = () => true")
    remove.click()
    expect(owner.get_by_role("status")).to_have_text("Removed from the group.")
    expect(members).not_to_contain_text("Gus Newcomer")

    expect(gus.locator("#reply-error")).to_contain_text("You are no longer in this group.")
    expect(gus.get_by_label("Write a message")).to_be_disabled()
    shot(gus, "group-thread-removed")
    assert gus.evaluate("window.__stayed === true")

    member = open_as("gil")
    member.goto(f"/messages/{gid}")
    member.get_by_role("link", name=re.compile("Group info")).first.click()  # the header line
    member.wait_for_url(f"**/messages/{gid}/info")
    expect(member.get_by_role("button", name="Rename")).to_have_count(0)
    member.evaluate("window.confirm = () => true")
    mark_no_reload(owner)
    member.get_by_role("button", name="Leave group").click()
    member.wait_for_url(re.compile(r"/messages\?notice=left$"))
    expect(member.locator("#list-notice")).to_have_text("You left the group.")
    expect(member.locator(f'[data-conversation-id="{gid}"]')).to_have_count(0)

    expect(members).not_to_contain_text("Gil Grower")  # live, on the owner's open page
    expect(owner.locator("#group-count")).to_contain_text("1 member")
    assert owner.evaluate("window.__stayed === true")


def test_group_info_by_keyboard_on_a_phone_in_the_dark_without_script(
    open_as: Any, server: Server
) -> None:
    person(server, "hana", "Hana Host", tier="privileged")
    hal = person(server, "hal", "Hal Helper")
    person(server, "hugo", "Hugo Hopeful")
    gid = group(server, "hana", "Harbour walks", [hal])

    page = open_as("hana", js=False, viewport=PHONE, dark=True)
    page.goto(f"/messages/{gid}")
    page.locator(".convo-menu summary").focus()
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="Group info", exact=True)
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/messages/{gid}/info")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)"  # the dark scheme's

    page.get_by_label("Find people in your communities").focus()
    page.keyboard.type("hugo")
    page.keyboard.press("Enter")
    box = page.get_by_role("checkbox", name="Add Hugo Hopeful")
    box.focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Add to group").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#group-members")).to_contain_text("Hugo Hopeful")
    shot(page, "group-info-phone-dark")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

    page.get_by_role("button", name="Remove Hugo Hopeful from the group").focus()
    page.keyboard.press("Enter")  # without script there is no question: the form is sent
    expect(page.get_by_role("status")).to_have_text("Removed from the group.")
    expect(page.locator("#group-members")).not_to_contain_text("Hugo Hopeful")
