"""The web UI in a real browser: live chat both ways, the same without JavaScript, the switch,
hostile input, the phone viewport. Screenshots go to PIGEON_SCREENSHOT_DIR when it is set."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.web.conftest import (
    DESKTOP,
    PHONE,
    Server,
    api_client,
    assert_no_reload,
    expect,
    mark_no_reload,
    shot,
)

pytestmark = pytest.mark.browser


def test_live_chat_both_ways_privileged_and_free(open_as: Any) -> None:
    pat = open_as("pat")
    fred = open_as("fred")
    expect(fred.get_by_text("No conversations yet.")).to_be_visible()
    mark_no_reload(fred)

    pat.goto("/messages/new?q=fred")
    pat.get_by_role("button", name="Message Fred Free").click()
    pat.wait_for_url(re.compile(r"/messages/\d+"))
    mark_no_reload(pat)
    box = pat.get_by_label("Write a message")
    box.fill("Hi Fred, your book is in")
    box.press("Enter")
    expect(pat.locator("#messages .msg.mine").last).to_contain_text("Hi Fred, your book is in")
    expect(box).to_have_value("")

    # Fred never wrote to Pat: a message request, shown without a reload, off the badge
    requests = fred.get_by_role("link", name=re.compile(r"^Requests \(1\)"))
    expect(requests).to_be_visible()
    expect(fred.locator("#nav-unread")).to_be_hidden()
    assert_no_reload(fred)

    requests.click()
    row = fred.locator(".convrow", has_text="Pat Privileged")
    expect(row).to_contain_text("Hi Fred, your book is in")
    row.click()
    fred.wait_for_url(re.compile(r"/messages/\d+"))
    fred.get_by_role("button", name="Accept").click()
    expect(fred.locator("#request-banner")).to_have_count(0)
    mark_no_reload(fred)
    expect(fred.locator("#nav-unread")).to_be_hidden()

    pat.get_by_label("Write a message").fill("Will you come by today?")
    pat.get_by_role("button", name="Send").click()
    expect(fred.locator("#messages .msg").last).to_contain_text("Will you come by today?")
    # Fred's page read it: Pat sees "Seen" under her last message
    expect(pat.locator("#messages .msg.mine").last.locator(".seen")).to_have_text("Seen")

    fred_box = fred.get_by_label("Write a message")
    fred_box.press_sequentially("Yes, after work", delay=20)
    expect(pat.locator("#typing")).to_have_text("Fred Free is typing…")
    fred_box.press("Enter")
    expect(pat.locator("#messages .msg").last).to_contain_text("Yes, after work")
    expect(pat.locator("#messages .msg").last).not_to_have_class(re.compile("mine"))
    expect(pat.locator("#typing")).to_have_text("")
    expect(fred.locator("#messages .msg.mine").last).to_contain_text("Yes, after work")

    # Fred's connection drops; what was sent meanwhile arrives once he is back
    fred.context.set_offline(True)
    pat.get_by_label("Write a message").fill("Sent while you were offline")
    pat.get_by_role("button", name="Send").click()
    expect(pat.locator("#messages .msg.mine").last).to_contain_text("while you were offline")
    fred.wait_for_timeout(1500)
    expect(fred.locator("#messages")).not_to_contain_text("while you were offline")
    fred.context.set_offline(False)
    expect(fred.locator("#messages .msg").last).to_contain_text(
        "Sent while you were offline", timeout=15000
    )
    assert_no_reload(pat)
    assert_no_reload(fred)


def test_the_same_chat_without_javascript(open_as: Any) -> None:
    nora = open_as("nora", js=False)
    nick = open_as("nick", js=False)
    nora.get_by_role("link", name="New").first.click()
    nora.get_by_label("Find people in your communities").fill("nick")
    nora.get_by_role("button", name="Search").click()
    nora.get_by_role("button", name="Message Nick Noscript").click()
    nora.get_by_label("Write a message").fill("Hello Nick, no script here")
    nora.get_by_role("button", name="Send").click()
    expect(nora.locator("#messages .msg.mine")).to_contain_text("Hello Nick, no script here")

    nick.reload()  # a message request: Nick never wrote to Nora; his reply accepts it
    nick.get_by_role("link", name=re.compile(r"^Requests \(1\)")).click()
    nick.locator(".convrow", has_text="Nora Noscript").click()
    expect(nick.locator("#messages .msg")).to_contain_text("Hello Nick, no script here")
    nick.get_by_label("Write a message").fill("Got it, thanks")
    nick.get_by_role("button", name="Send").click()
    expect(nick.locator("#messages .msg.mine")).to_contain_text("Got it, thanks")

    nora.get_by_role("button", name="Refresh").click()
    expect(nora.locator("#messages .msg").last).to_contain_text("Got it, thanks")

    # edit and delete one's own message through the options menu
    mine = nora.locator("#messages .msg.mine").last
    mine.locator("summary").click()
    mine.get_by_role("link", name="Edit").click()
    nora.get_by_label("Edit your message").fill("Hello Nick (edited)")
    nora.get_by_role("button", name="Save").click()
    expect(nora.locator("#messages .msg.mine").last).to_contain_text("Hello Nick (edited)")
    expect(nora.locator("#messages .msg.mine").last).to_contain_text("edited")
    mine = nora.locator("#messages .msg.mine").last
    mine.locator("summary").click()
    mine.get_by_role("button", name="Delete").click()
    expect(nora.locator("#messages .msg.deleted")).to_contain_text("Message deleted")
    nick.get_by_role("button", name="Refresh").click()
    expect(nick.locator("#messages")).not_to_contain_text("Hello Nick")


HOSTILE = [
    "<script>window.__xss = 'script'</script>",
    "<img src=x onerror=\"window.__xss='img'\">",
    "javascript:window.__xss='link'",
    "[click me](javascript:window.__xss='md') and https://example.com/a?b=<c>&d=\"e\"",
    "<a href=\"javascript:window.__xss='a'\">click</a> <svg onload=\"window.__xss='svg'\"></svg>",
]


def test_hostile_messages_never_run(open_as: Any) -> None:
    xavier = open_as("xavier")
    vic = open_as("vic")
    xavier.goto("/messages/new?q=vic")
    xavier.get_by_role("button", name="Message Vic Viewer").click()
    xavier.wait_for_url(re.compile(r"/messages/\d+"))
    thread_url = xavier.url.split("#")[0]
    vic.goto(thread_url)  # open while the attack arrives live
    for text in HOSTILE:
        xavier.get_by_label("Write a message").fill(text)
        xavier.get_by_role("button", name="Send").click()
        expect(xavier.locator("#messages .msg.mine").last).to_contain_text(text[:12])
    expect(vic.locator("#messages .msg")).to_have_count(len(HOSTILE))
    for page in (vic, xavier):
        page.goto(thread_url)  # and rendered by the server on a fresh load
        expect(page.locator("#messages .msg")).to_have_count(len(HOSTILE))
        for body in page.locator("#messages .body").all():
            body.hover()
        assert page.evaluate("window.__xss") is None
        assert page.dialogs == []
        assert page.locator("#messages img, #messages script, #messages svg").count() == 0
        for text in HOSTILE[:3]:
            expect(page.locator("#messages .body", has_text=text)).to_have_count(1)
        links = page.locator("#messages a[href]:not([href^='/'])")
        assert links.count() == 1
        assert links.first.get_attribute("href") == "https://example.com/a?b="
        assert links.first.get_attribute("rel") == "noopener noreferrer nofollow"
        hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
        assert not [h for h in hrefs if h.lower().startswith("javascript")]
        page.goto("/messages" if page is xavier else "/messages/requests")  # vic never wrote
        expect(page.locator(".convrow").first).to_contain_text("<a href=")
        assert page.evaluate("window.__xss") is None


def test_hostile_names_and_bios_never_run(open_as: Any, server: Server) -> None:
    mallory = api_client(server, "mallory")
    try:
        mallory.put(
            f"/users/{server.ids['mallory']}",
            json={"bio": "<script>window.__xss='bio'</script> javascript:alert(1)"},
        )
        conv = mallory.post("/conversations", json={"participant_ids": [server.ids["vic"]]})
        mallory.post(f"/conversations/{conv.json()['id']}/messages", json={"body": "hello"})
    finally:
        mallory.close()
    vic = open_as("vic")
    for url in (
        "/messages/requests",  # vic never wrote to mallory
        f"/messages/{conv.json()['id']}",
        "/messages/new?q=mallory",
        "/u/mallory",
    ):
        vic.goto(url)
        expect(vic.get_by_text("<img src=x onerror").first).to_be_visible()
        assert vic.locator("main img, main script").count() == 0
        assert vic.evaluate("window.__xss") is None
    expect(vic.locator(".bio")).to_contain_text("<script>window.__xss='bio'</script>")
    assert vic.dialogs == []


def test_phone_viewport_is_usable_with_one_thumb(open_as: Any, server: Server) -> None:
    maya = open_as("maya", viewport=PHONE)
    sam = open_as("sam", viewport=PHONE)
    maya.goto("/messages/new?q=sam")
    maya.get_by_role("button", name="Message Sam Reader").click()
    maya.wait_for_url(re.compile(r"/messages/\d+"))
    for i in range(12):
        maya.get_by_label("Write a message").fill(f"Line {i}: new titles on the front table")
        maya.get_by_role("button", name="Send").click()
        expect(maya.locator("#messages .msg.mine").last).to_contain_text(f"Line {i}:")
    sam.goto("/messages/requests")  # sam never wrote to maya
    for page in (maya, sam):
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal scrolling at phone size: {width}px"
    sam.locator(".convrow").first.click()
    sam.get_by_role("button", name="Accept").click()
    send = sam.get_by_role("button", name="Send")
    expect(send).to_be_in_viewport()
    box = send.bounding_box()
    assert box and box["height"] >= 44 and box["y"] + box["height"] <= PHONE["height"]
    # read while it was a request: the accepted thread opens at the newest
    expect(sam.locator("#messages .msg").last).to_be_in_viewport()
    assert sam.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # the reader who scrolled up is not yanked down by a new message
    sam.locator("#scroller").evaluate("el => el.scrollTop = -2000")
    top_before = sam.locator("#messages .msg").first.bounding_box()
    maya.get_by_label("Write a message").fill("One more thing")
    maya.get_by_role("button", name="Send").click()
    expect(sam.locator("#jump")).to_be_visible()
    top_after = sam.locator("#messages .msg").first.bounding_box()
    assert top_before and top_after and abs(top_after["y"] - top_before["y"]) < 2
    sam.locator("#jump").click()
    expect(sam.locator("#messages .msg").last).to_be_in_viewport()


def test_keyboard_only_reply(open_as: Any) -> None:
    lena = open_as("lena")
    lena.goto("/messages/new?q=omar")
    lena.get_by_role("button", name="Message Omar Other").focus()
    lena.keyboard.press("Enter")
    lena.wait_for_url(re.compile(r"/messages/\d+"))
    lena.get_by_label("Write a message").focus()
    lena.keyboard.type("Typed without a mouse")
    lena.keyboard.press("Enter")
    expect(lena.locator("#messages .msg.mine").last).to_contain_text("Typed without a mouse")
    too_long = "y" * 4001
    lena.get_by_label("Write a message").fill(too_long)
    lena.keyboard.press("Enter")
    expect(lena.locator("#reply-error")).to_have_text("Body must be at most 4000 characters.")
    expect(lena.get_by_label("Write a message")).to_have_value(too_long)
    lena.keyboard.press("Shift+Tab")
    focused = lena.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert focused != "none"

    # signed out elsewhere: the open page says so instead of showing the sign-in page inside
    other = lena.context.new_page()
    other.goto("/logout")
    other.locator("#main").get_by_role("button", name="Sign out").click()
    # its live connection ends with the session; the page notices when it next asks
    expect(lena.locator("#live-banner")).to_contain_text("Your session has ended", timeout=20000)
    assert lena.locator("#messages input[name=login]").count() == 0


def test_admin_switch_hides_messaging_for_members(open_as: Any) -> None:
    admin = open_as("admin")
    pat = open_as("pat")
    pat.goto("/u/fred")
    expect(pat.locator("#nav-messages")).to_be_visible()
    expect(pat.locator("#message-button")).to_be_visible()

    admin.goto("/admin")
    expect(admin.locator("#switch-state")).to_have_text("on")
    admin.accept_dialogs = True
    admin.get_by_role("button", name="Turn messaging off").click()
    expect(admin.get_by_role("status")).to_contain_text("Direct messaging is off.")
    expect(admin.locator("#switch-state")).to_have_text("off")
    expect(admin.locator(".audit")).to_contain_text("Ada Admin turned messaging off")
    try:
        # live: the open page hears of it and hides the entry points at once
        expect(pat.locator("#nav-messages")).to_have_count(0)
        expect(pat.locator("#message-button")).to_have_count(0)
        expect(pat.locator("#live-banner")).to_contain_text("switched messaging off")
        pat.reload()
        expect(pat.locator("#nav-messages")).to_have_count(0)
        expect(pat.locator("#message-button")).to_have_count(0)
        pat.goto("/messages")
        expect(pat.get_by_role("heading", name="Messaging is switched off")).to_be_visible()
    finally:
        admin.goto("/admin")
        admin.get_by_role("button", name="Turn messaging on").click()
        expect(admin.locator("#switch-state")).to_have_text("on")
    pat.goto("/u/fred")
    expect(pat.locator("#message-button")).to_be_visible()


def test_screenshots_at_phone_and_desktop(open_as: Any, server: Server) -> None:
    """The list, the thread, the new-conversation page and the admin page at both sizes."""
    ids = server.ids
    lena, pat, sam = (api_client(server, name) for name in ("lena", "pat", "sam"))
    try:
        group = lena.post(
            "/conversations",
            json={
                "kind": "group",
                "title": "Saturday book club",
                "participant_ids": [ids["sam"], ids["pat"], ids["maya"]],
            },
        ).json()
        lena.post(
            f"/conversations/{group['id']}/messages",
            json={"body": "This month: Piranesi. We meet at 10 by the café."},
        )
        pat.post(
            f"/conversations/{group['id']}/messages", json={"body": "I will bring the pastries!"}
        )
        direct = pat.post("/conversations", json={"participant_ids": [ids["sam"]]}).json()
        pat.post(
            f"/conversations/{direct['id']}/messages",
            json={"body": "Did you finish the Le Guin? I would love to borrow it."},
        )
        sam.post(f"/conversations/{direct['id']}/messages", json={"body": "Almost! Friday?"})
        thread = lena.post("/conversations", json={"participant_ids": [ids["sam"]]}).json()
        for body in (
            "Hi Sam! The signed copy of The Remains of the Day you ordered is here.",
            "We keep it at the counter until Saturday. Opening hours: https://example.com/hours",
        ):
            lena.post(f"/conversations/{thread['id']}/messages", json={"body": body})
        sam.post(
            f"/conversations/{thread['id']}/messages",
            json={"body": "Wonderful, thank you! I will come by on Friday afternoon."},
        )
        lena.post(f"/conversations/{thread['id']}/messages", json={"body": "See you then!"})
    finally:
        for client in (lena, pat, sam):
            client.close()
    for size, viewport in (("mobile", PHONE), ("desktop", DESKTOP)):
        reader = open_as("sam", viewport=viewport)
        expect(reader.locator(".convrow").first).to_be_visible()
        shot(reader, f"list-{size}")
        reader.goto(f"/messages/{thread['id']}")
        expect(reader.locator("#messages .msg").last).to_contain_text("See you then")
        shot(reader, f"thread-{size}")
        staff = open_as("lena", viewport=viewport)
        staff.goto("/messages/new?q=a")
        shot(staff, f"new-{size}")
        admin = open_as("admin", viewport=viewport)
        admin.goto("/admin")
        expect(admin.locator("#switch-state")).to_be_visible()
        shot(admin, f"admin-{size}")
    night = open_as("sam", viewport=PHONE, dark=True)
    night.goto(f"/messages/{thread['id']}")
    expect(night.locator("#messages .msg").last).to_contain_text("See you then")
    shot(night, "thread-mobile-dark")
