"""Notification settings in a real browser, with and without script: from the profile to the
settings page, a plain form that saves and says so."""

from __future__ import annotations

from contextlib import closing
from typing import Any

import pytest

from tests.web.conftest import PHONE, Server, api_client, expect, shot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("js", [True, False])
def test_digests_are_turned_off_and_on_from_the_profile(
    open_as: Any, server: Server, js: bool
) -> None:
    page = open_as("omar", js=js, viewport=PHONE)
    page.goto("/u/omar")
    shot(page, f"profile-notifications-link-{'js' if js else 'nojs'}")
    page.get_by_role("link", name="Notification settings").click()
    expect(page).to_have_url(f"{server.url}/u/omar/notifications")
    box = page.get_by_label("Email me when messages wait for me while I'm away")
    expect(box).to_be_checked()

    box.uncheck()
    page.get_by_role("button", name="Save notification settings").click()
    expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()
    expect(box).not_to_be_checked()
    shot(page, f"notifications-{'js' if js else 'nojs'}")
    with closing(api_client(server, "omar")) as api:
        assert api.get("/me/notifications").json() == {"email_digest": False}

    box.check()
    page.get_by_role("button", name="Save notification settings").click()
    expect(page.get_by_text("Your notification settings are saved.")).to_be_visible()
    with closing(api_client(server, "omar")) as api:
        assert api.get("/me/notifications").json() == {"email_digest": True}
