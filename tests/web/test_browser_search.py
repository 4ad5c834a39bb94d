"""Search in a real browser on a phone: type in the box over the conversation list, submit, pick
a message among the results and land on it in its thread, with script and without."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import pytest

from tests.web.conftest import PHONE, Server, api_client, expect, shot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("js", [True, False], ids=["script", "no-script"])
def test_a_message_found_from_the_list_opens_in_its_thread(
    open_as: Any, server: Server, js: bool
) -> None:
    word = "marmalade" if js else "gooseberry"
    with closing(api_client(server, "maya")) as maya_api:
        r = maya_api.post("/conversations", json={"participant_ids": [server.ids["sam"]]})
        conv_id = r.json()["id"]
    with closing(api_client(server, "sam")) as sam_api:
        sent = sam_api.post(
            f"/conversations/{conv_id}/messages",
            json={"body": f"The {word} jars <b>arrived</b> today"},
        ).json()
        for i in range(60):  # the found message is far from the newest
            sam_api.post(f"/conversations/{conv_id}/messages", json={"body": f"later note {i}"})

    maya = open_as("maya", js=js, viewport=PHONE)
    maya.goto("/messages")
    box = maya.get_by_role("searchbox", name="Search conversations, people and messages")
    box.fill(word[:6].upper())  # a prefix, in capitals
    box.press("Enter")
    maya.wait_for_url(re.compile(r"/messages/search\?q="))
    hit = maya.locator(".message-hit").first
    expect(hit.locator("mark")).to_have_text(word)
    expect(hit).to_contain_text("<b>arrived</b>")  # shown as text, not markup
    assert maya.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    shot(maya, f"search-results-{'js' if js else 'nojs'}")

    hit.click()
    maya.wait_for_url(re.compile(rf"/messages/{conv_id}\?at={sent['id']}#m{sent['id']}$"))
    target = maya.locator(f"#m{sent['id']}")
    expect(target).to_contain_text(f"The {word} jars")
    expect(target).to_be_in_viewport()
    assert (
        maya.evaluate("document.querySelector(':target') && document.querySelector(':target').id")
        == f"m{sent['id']}"
    )
    shot(maya, f"search-landed-{'js' if js else 'nojs'}")
