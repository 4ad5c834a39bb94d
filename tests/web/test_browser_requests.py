"""Message requests in a real browser: a first message reaches the recipient's Requests, not
their inbox; they open it, accept and reply, and the sender sees "Seen" and the reply live."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.web.conftest import (
    PHONE,
    Server,
    api_client,
    assert_no_reload,
    expect,
    mark_no_reload,
    shot,
)

pytestmark = pytest.mark.browser


def test_a_request_is_accepted_and_answered_live(open_as: Any, server: Server) -> None:
    with closing(api_client(server, "reva")) as reva_api:
        r = reva_api.post("/conversations", json={"participant_ids": [server.ids["ben"]]})
        conv_id = r.json()["id"]
    ben = open_as("ben", viewport=PHONE)
    mark_no_reload(ben)
    reva = open_as("reva")
    reva.goto(f"/messages/{conv_id}")
    mark_no_reload(reva)

    reva.get_by_label("Write a message").fill("Hi Ben, do you still have the atlas?")
    reva.get_by_role("button", name="Send").click()
    expect(reva.locator("#messages .msg.mine")).to_have_count(1)

    # Ben's list shows the request live, behind its own link, and no badge
    link = ben.get_by_role("link", name="Requests (1) waiting for your answer")
    expect(link).to_be_visible()
    expect(ben.locator("#nav-unread")).to_be_hidden()
    expect(ben.locator("#convlist .convrow")).to_have_count(0)
    assert_no_reload(ben)
    link.click()
    try:
        ben.wait_for_url(re.compile(r"/messages/requests"), timeout=3000)
    except PlaywrightTimeout:  # a live refresh of the list replaced the link under the click
        link.click()
    expect(ben).to_have_url(re.compile(r"/messages/requests"))
    shot(ben, "requests-list-mobile")
    ben.get_by_role("link", name="Reva Requester").click()
    banner = ben.locator("#request-banner")
    expect(banner).to_contain_text("Reva Requester wants to message you.")
    shot(ben, "request-mobile")

    # read while a request: Reva is not told
    reva.wait_for_timeout(300)
    expect(reva.locator(".msg .seen")).to_have_count(0)

    ben.get_by_role("button", name="Accept").click()
    expect(ben.locator("#request-banner")).to_have_count(0)
    expect(reva.locator(".msg .seen")).to_have_text("Seen")  # live, on accepting

    mark_no_reload(ben)
    ben.get_by_label("Write a message").fill("Yes! Come by on Saturday.")
    ben.get_by_role("button", name="Send").click()
    expect(reva.locator("#messages .msg:not(.mine) .bubble")).to_contain_text(
        "Yes! Come by on Saturday."
    )
    assert_no_reload(reva)


def test_the_banner_works_without_script_in_dark_mode(open_as: Any, server: Server) -> None:
    with closing(api_client(server, "reva")) as reva_api:
        r = reva_api.post("/conversations", json={"participant_ids": [server.ids["dex"]]})
        conv_id = r.json()["id"]
        reva_api.post(f"/conversations/{conv_id}/messages", json={"body": "Selling bookmarks!"})
    dex = open_as("dex", js=False, viewport=PHONE, dark=True)
    dex.goto("/messages")
    dex.get_by_role("link", name="Requests (1) waiting for your answer").click()
    dex.get_by_role("link", name="Reva Requester").click()
    shot(dex, "request-mobile-dark")
    report = dex.locator("#request-banner details")
    report.locator("summary").click()
    report.get_by_label("Reason").select_option("spam")
    report.get_by_role("button", name="Report and decline").click()
    expect(dex.get_by_role("status")).to_contain_text("Declined and reported")
    expect(dex.get_by_text("No message requests.")).to_be_visible()
