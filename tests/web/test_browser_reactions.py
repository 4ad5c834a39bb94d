"""Reactions in a real browser: one person reacts from the message's menu, the other's open
thread shows the pill, named with who reacted, without a reload, a press on the pill reacts
back, and an emoji typed in the menu reacts too."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pytest

from tests.web.conftest import Server, api_client, assert_no_reload, expect, mark_no_reload

pytestmark = pytest.mark.browser


def test_a_reaction_shows_live_in_the_other_persons_thread(open_as: Any, server: Server) -> None:
    with closing(api_client(server, "rosa")) as rosa_api:
        r = rosa_api.post("/conversations", json={"participant_ids": [server.ids["theo"]]})
        conv_id = r.json()["id"]
        rosa_api.post(f"/conversations/{conv_id}/messages", json={"body": "Coffee at ten?"})
    theo = open_as("theo")
    theo.goto(f"/messages/{conv_id}")
    mark_no_reload(theo)
    rosa = open_as("rosa")
    rosa.goto(f"/messages/{conv_id}")
    mark_no_reload(rosa)

    message = rosa.locator("#messages .msg.mine").last
    message.locator("summary").click()
    message.get_by_role("button", name="React with 👍").click()
    expect(message.get_by_role("button", name="👍 1: You")).to_have_attribute(
        "aria-pressed", "true"
    )
    pill = theo.locator("#messages .msg").last.get_by_role("button", name="👍 1: Rosa Reacts")
    expect(pill).to_have_attribute("aria-pressed", "false")
    expect(pill).to_have_attribute("title", "👍 1: Rosa Reacts")  # who, on hover too

    pill.click()  # Theo agrees: both pages show two, pressed for each, and who
    expect(theo.get_by_role("button", name="👍 2: Rosa Reacts and you")).to_have_attribute(
        "aria-pressed", "true"
    )
    theirs = rosa.get_by_role("button", name="👍 2: Theo Thread and you")
    expect(theirs).to_have_attribute("title", "👍 2: Theo Thread and you")

    # any other emoji, typed in the menu: Enter sends it (not the palette's first), and what is
    # not one emoji is said under the field, the menu left open to correct it
    message = theo.locator("#messages .msg").last
    message.locator("details.actions > summary").click()
    field = message.get_by_label("Other emoji")
    field.fill("ok")
    field.press("Enter")
    expect(message.locator(".other-emoji [role=alert]")).to_have_text("A reaction is one emoji.")
    expect(field).to_be_focused()
    expect(field).to_have_attribute("aria-invalid", "true")
    field.fill("🎉")
    field.press("Enter")
    expect(message.get_by_role("button", name="🎉 1: You")).to_be_visible()
    expect(rosa.get_by_role("button", name="🎉 1: Theo Thread")).to_be_visible()
    expect(theo.get_by_role("button", name="👍 2: Rosa Reacts and you")).to_be_visible()
    assert_no_reload(theo)
    assert_no_reload(rosa)
