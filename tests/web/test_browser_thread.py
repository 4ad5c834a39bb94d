"""The thread in a real browser: replying from the menu, copying, menus that close with
Escape, a long history that opens at the first unread message and loads older pages in place,
a keyboard path to the composer of a handful of stops, and short screens that keep the
messages in view."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pytest

from tests.web.conftest import (
    DESKTOP,
    Server,
    api_client,
    assert_no_reload,
    expect,
    mark_no_reload,
)

pytestmark = pytest.mark.browser


# what a tab stop is, for a failure's message: its tag, id or class, and text
FOCUSED = """() => { const el = document.activeElement;
  return el.tagName + (el.id ? '#' + el.id : '') + (el.className ? '.' + el.className : '')
    + ' ' + (el.textContent || '').trim().slice(0, 30); }"""


def conversation(server: Server, texts: list[str]) -> tuple[int, list[int]]:
    """Jon writes `texts` to Ivy in a fresh group of two (so each test has its own thread)."""
    with closing(api_client(server, "jon")) as jon:
        r = jon.post("/groups", json={"title": "Jon and Ivy", "member_ids": [server.ids["ivy"]]})
        conv_id = r.json()["id"]
        ids = []
        for text in texts:
            r = jon.post(f"/conversations/{conv_id}/messages", json={"body": text})
            ids.append(r.json()["id"])
    return conv_id, ids


def test_reply_copy_and_escape(open_as: Any, server: Server) -> None:
    conv_id, (first, second) = conversation(server, ["Is the new Le Guin in?\nAsk Ada", "Hello?"])
    ivy = open_as("ivy")
    ivy.context.grant_permissions(["clipboard-read", "clipboard-write"])
    ivy.goto(f"/messages/{conv_id}")
    mark_no_reload(ivy)
    message = ivy.locator(f"#m{first}")

    menu = message.locator("details.actions")
    menu.locator(":scope > summary").click()
    expect(menu).to_have_attribute("open", "")
    ivy.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    assert ivy.evaluate("document.activeElement.tagName") == "SUMMARY"

    menu.locator(":scope > summary").click()
    message.get_by_role("button", name="Copy text").click()
    expect(ivy.locator("#toast")).to_have_text("Message copied")
    expect(menu).not_to_have_attribute("open", "")
    assert ivy.evaluate("navigator.clipboard.readText()") == "Is the new Le Guin in?\nAsk Ada"

    menu.locator(":scope > summary").click()
    message.get_by_role("link", name="Reply").click()
    expect(ivy.locator("#replying")).to_be_visible()
    expect(ivy.locator("#replying")).to_contain_text("Replying to Jon Jotter")
    expect(ivy.get_by_label("Write a message")).to_be_focused()
    ivy.keyboard.type("Yes, on shelf 3")
    ivy.keyboard.press("Enter")
    reply = ivy.locator("#messages .msg.mine").last
    expect(reply.locator(".quote")).to_contain_text("Jon Jotter")
    expect(reply.locator(".quote")).to_contain_text("Is the new Le Guin in?")
    expect(ivy.locator("#replying")).to_be_hidden()

    reply.locator(".quote").click()  # jumps to the original, in place
    expect(message).to_be_focused()
    assert_no_reload(ivy)

    # Jon sees the quote live, and a reply cancelled sends a plain message
    jon = open_as("jon")
    jon.goto(f"/messages/{conv_id}")
    expect(jon.locator("#messages .msg").last.locator(".quote")).to_contain_text("Is the new")
    jon.locator(f"#m{second} details.actions > summary").click()
    jon.locator(f"#m{second}").get_by_role("link", name="Reply").click()
    jon.get_by_role("button", name="Cancel the reply").click()
    jon.get_by_label("Write a message").fill("plain")
    jon.get_by_label("Write a message").press("Enter")
    expect(jon.locator("#messages .msg.mine").last).to_contain_text("plain")
    assert jon.locator("#messages .msg.mine").last.locator(".quote").count() == 0


def test_a_long_history_opens_at_the_first_unread_and_loads_older_in_place(
    open_as: Any, server: Server
) -> None:
    conv_id, ids = conversation(server, [f"Message number {n}" for n in range(130)])
    with closing(api_client(server, "ivy")) as ivy_api:
        ivy_api.post(f"/conversations/{conv_id}/read", json={"message_id": ids[99]})
    ivy = open_as("ivy")
    ivy.goto(f"/messages/{conv_id}#latest")
    mark_no_reload(ivy)
    divider = ivy.locator("#unread")
    expect(divider).to_have_text("30 unread messages")
    expect(divider).to_be_in_viewport()
    expect(ivy.locator(f"#m{ids[100]}")).to_be_in_viewport()
    expect(ivy.locator(f"#m{ids[-1]}")).not_to_be_in_viewport()
    expect(ivy.locator("#thread-title")).to_be_in_viewport()  # only the thread scrolled
    jump = ivy.locator("#jump")
    expect(jump).to_have_text("↓ Jump to latest")
    jump.click()
    expect(ivy.locator(f"#m{ids[-1]}")).to_be_in_viewport()
    expect(jump).to_be_hidden()

    assert ivy.locator("#messages .msg").count() == 50
    for _ in range(6):  # scroll up: older pages arrive above, and the reader stays put
        ivy.locator("#scroller").evaluate("el => el.scrollTop = -el.scrollHeight")
        ivy.wait_for_timeout(300)
    expect(ivy.locator("#messages .msg")).to_have_count(130)
    expect(ivy.locator("#older")).to_have_count(0)
    assert ivy.locator("#messages li.day").count() == 1  # one "Today", not one per page
    # the ids run in order, each once
    shown = ivy.locator("#messages .msg").evaluate_all("els => els.map(e => Number(e.dataset.id))")
    assert shown == ids
    assert_no_reload(ivy)


def test_the_keyboard_path_to_the_composer_is_short(open_as: Any, server: Server) -> None:
    conv_id, ids = conversation(server, [f"line {n}" for n in range(40)])
    ivy = open_as("ivy", viewport=DESKTOP)
    ivy.goto(f"/messages/{conv_id}")
    expect(ivy.locator("#refresh-form")).to_be_hidden()  # the page's script has run
    ivy.keyboard.press("Tab")
    expect(ivy.locator(".skip")).to_be_focused()
    path: list[str] = []
    while len(path) < 40 and not ivy.evaluate("document.activeElement.id === 'reply-body'"):
        ivy.keyboard.press("Tab")
        path.append(ivy.evaluate(FOCUSED))
    # the navigation (3), New, search, the list (one stop), its two links, the group's info
    # link and menu, the messages (one stop) and the latest one's menu, attach, and "Jump to
    # latest" while the thread opens at its unread divider: 52 before
    assert len(path) <= 16, f"{len(path)} tab stops from the skip link to the composer: {path}"
    # the messages are one stop; arrow keys move between them
    ivy.locator(f"#m{ids[-1]}").focus()
    ivy.keyboard.press("ArrowUp")
    expect(ivy.locator(f"#m{ids[-2]}")).to_be_focused()
    ivy.keyboard.press("End")
    expect(ivy.locator(f"#m{ids[-1]}")).to_be_focused()
    ivy.keyboard.press("Enter")  # opens its menu
    expect(ivy.locator(f"#m{ids[-1]} details.actions")).to_have_attribute("open", "")
    # the Refresh button is for pages without script: on an older page too (opened from a
    # search result, say), where nothing is live
    expect(ivy.locator("#refresh-form")).to_be_hidden()
    older = f"/messages/{conv_id}?before={ids[5]}"
    ivy.goto(older)
    expect(ivy.get_by_role("link", name="Jump to the newest messages")).to_be_visible()
    expect(ivy.locator("#refresh-form")).to_be_hidden()
    plain = open_as("ivy", js=False, viewport=DESKTOP)
    plain.goto(older)
    refresh = plain.locator("#refresh-form button")
    expect(refresh).to_be_visible()
    expect(refresh).to_have_accessible_name(refresh.inner_text())  # says what it shows


@pytest.mark.parametrize("size", [{"width": 740, "height": 300}, {"width": 320, "height": 200}])
def test_short_screens_keep_the_messages_and_the_composer(
    open_as: Any, server: Server, size: dict[str, int]
) -> None:
    """A phone on its side with the keyboard out, or a page zoomed to 400 %: the messages keep
    room, the composer stays on screen, and a banner does not push it off."""
    conv_id, ids = conversation(server, [f"short {n}" for n in range(20)])
    with closing(api_client(server, "ivy")) as ivy_api:  # read: the thread opens at the newest
        ivy_api.post(f"/conversations/{conv_id}/read", json={"message_id": ids[-1]})
    ivy = open_as("ivy", viewport=size)
    ivy.goto(f"/messages/{conv_id}")
    ivy.evaluate(
        "() => { const b = document.getElementById('live-banner');"
        " b.textContent = 'An admin has switched messaging off.'; b.hidden = false; }"
    )
    box = ivy.get_by_label("Write a message").bounding_box()
    assert box and box["y"] + box["height"] <= size["height"]
    scroller = ivy.locator("#scroller").bounding_box()
    assert scroller and scroller["height"] >= size["height"] * 0.3
    expect(ivy.locator(f"#m{ids[-1]}")).to_be_in_viewport()
    assert ivy.evaluate("document.documentElement.scrollWidth") <= size["width"]
    # only the thread scrolls, never the page around it
    assert ivy.evaluate("document.scrollingElement.scrollHeight") <= size["height"]


def test_the_list_keeps_its_place_on_a_wide_screen(open_as: Any, server: Server) -> None:
    convs = [conversation(server, [f"group {n}"])[0] for n in range(18)]
    ivy = open_as("ivy", viewport=DESKTOP)
    ivy.goto(f"/messages/{convs[-1]}")
    pane = ivy.locator(".pane-list")
    pane.evaluate("el => el.scrollTop = el.scrollHeight")
    before = pane.evaluate("el => el.scrollTop")
    assert before > 0
    row = ivy.locator("#convlist a.convrow").nth(15)
    target = row.get_attribute("data-conversation-id")
    row.click()
    ivy.wait_for_url(f"**/messages/{target}*")

    expect(ivy.locator(f'#convlist a[data-conversation-id="{target}"]')).to_have_attribute(
        "aria-current", "page"
    )
    assert abs(pane.evaluate("el => el.scrollTop") - before) < 2
    expect(ivy.locator(f'#convlist a[data-conversation-id="{target}"]')).to_be_in_viewport()
    assert ivy.evaluate("document.scrollingElement.scrollTop") == 0  # the page itself stays put


def _jon_and_ivy_talking(server: Server) -> int:
    """Their direct conversation, in which Ivy has answered: no longer a message request,
    which would keep her presence from Jon whatever the tests before did."""
    with closing(api_client(server, "jon")) as jon_api:
        r = jon_api.post("/conversations", json={"participant_ids": [server.ids["ivy"]]})
        conv_id = int(r.json()["id"])
        jon_api.post(f"/conversations/{conv_id}/messages", json={"body": "there?"})
    with closing(api_client(server, "ivy")) as ivy_api:
        r = ivy_api.post(f"/conversations/{conv_id}/messages", json={"body": "here"})
        assert r.status_code == 201, r.text
    return conv_id


def test_online_and_last_seen_in_the_header_live(open_as: Any, server: Server) -> None:
    conv_id = _jon_and_ivy_talking(server)
    jon = open_as("jon")
    jon.goto(f"/messages/{conv_id}")
    mark_no_reload(jon)
    ivy = open_as("ivy")
    ivy.goto(f"/messages/{conv_id}")
    presence = jon.locator("#presence")
    expect(presence).to_have_text("online")
    ivy.context.close()  # Ivy goes away: Jon's header says when, without a reload
    expect(presence).to_contain_text("last seen today at")
    assert_no_reload(jon)


def test_someone_who_comes_online_before_the_page_is_live_shows_online(
    open_as: Any, server: Server
) -> None:
    """Ivy comes online after Jon's thread was rendered but before his page's live socket is
    open: no frame carries it, so once the socket says hello the header asks how it stands."""
    conv_id = _jon_and_ivy_talking(server)
    jon = open_as("jon")
    held: list[Any] = []  # Jon's socket, kept from the server until Ivy is online
    jon.route_web_socket("**/api/v1/ws", lambda ws: held.append(ws))
    jon.goto(f"/messages/{conv_id}")
    mark_no_reload(jon)
    presence = jon.locator("#presence")
    expect(presence).not_to_have_text("online")
    ivy = open_as("ivy")
    ivy.goto(f"/messages/{conv_id}")
    for _ in range(100):  # until the server has Ivy online
        now = jon.request.get(f"/messages/{conv_id}/presence").text()
        if 'data-status="online"' in now:
            break
        jon.wait_for_timeout(50)
    else:
        raise AssertionError("the server never saw Ivy online")
    assert held, "the page opened no live socket"
    held[0].connect_to_server()
    expect(presence).to_have_text("online")
    assert_no_reload(jon)
