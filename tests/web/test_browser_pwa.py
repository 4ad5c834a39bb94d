"""The installable app in a real browser: the manifest is linked, the service worker takes
control, a page that cannot load shows the offline page (which comes back by itself), and a
message arriving while the tab is hidden raises a notification that opens the thread."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.web.conftest import Server, api_client, expect

pytestmark = pytest.mark.browser

# observe the page's notifications: every one it creates is recorded, and still created
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notes = [];
  function Recorded(title, options) {
    const entry = { title: title, options: options || {}, note: null };
    window.__notes.push(entry);
    entry.note = new Real(title, options);
    return entry.note;
  }
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  window.Notification = Recorded;
})();
"""


# headless Chromium keeps every tab visible, even one behind another or in a minimized window;
# this lets the test say when Pigeon's tab is in the background, as a real browser would
BACKGROUND_TAB = """
(() => {
  let hidden = false;
  const state = { configurable: true, get: () => (hidden ? "hidden" : "visible") };
  Object.defineProperty(Document.prototype, "visibilityState", state);
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => hidden });
  window.__hide = (value) => {
    hidden = value;
    document.dispatchEvent(new Event("visibilitychange"));
  };
})();
"""


# where the page's service worker stands: what a failure to take control reports
WORKER_STATE = """
navigator.serviceWorker.getRegistration().then((r) => r ? {
  installing: r.installing && r.installing.state, waiting: r.waiting && r.waiting.state,
  active: r.active && r.active.state, controller: navigator.serviceWorker.controller !== null,
} : "no registration")
"""


def controlled(page: Any) -> None:
    """Wait until the service worker controls the page. Installing fetches the offline page and
    its files first; an install that fails (a fetch cut short on a busy machine) is tried
    again at the next page load, as a person's browser would, so the page is loaded again."""
    for _ in range(3):
        try:
            page.wait_for_function(
                "() => navigator.serviceWorker.controller !== null", timeout=20000
            )
            return
        except PlaywrightTimeout:
            page.reload()
    raise AssertionError(f"the service worker never took control: {page.evaluate(WORKER_STATE)}")


def test_the_app_installs_and_shows_the_offline_page_without_a_network(
    open_as: Any, server: Server
) -> None:
    page = open_as("pippa")
    assert page.locator('link[rel="manifest"]').get_attribute("href") == "/manifest.webmanifest"
    manifest = page.evaluate("fetch('/manifest.webmanifest').then(r => r.json())")
    assert manifest["display"] == "standalone"
    controlled(page)
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL").endswith("/sw.js")

    page.context.set_offline(True)
    page.goto("/messages/new")
    expect(page.get_by_role("heading", name="You are offline")).to_be_visible()
    assert page.url.endswith("/messages/new")
    # the shell's styles came from the cache: the page is styled, not bare
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"

    page.context.set_offline(False)  # back online: the page tries again by itself
    expect(page.get_by_role("heading", name="New conversation")).to_be_visible(timeout=30000)


def test_a_hidden_tab_notifies_of_a_new_message_and_opens_its_thread(
    open_as: Any, server: Server
) -> None:
    with (
        closing(api_client(server, "henri")) as henri_api,
        closing(api_client(server, "pippa")) as pippa_api,
    ):
        conv_id = henri_api.post(
            "/conversations", json={"participant_ids": [server.ids["pippa"]]}
        ).json()["id"]
        assert pippa_api.post(f"/conversations/{conv_id}/accept").status_code == 200
        page = open_as("pippa")
        context = page.context
        context.grant_permissions(["notifications"], origin=server.url)
        context.add_init_script(RECORD_NOTIFICATIONS)
        context.add_init_script(BACKGROUND_TAB)
        page.goto("/messages")
        page.wait_for_function("() => window.__notes !== undefined")
        assert page.evaluate("Notification.permission") == "granted"

        # while the tab is visible, nothing is raised: the page itself shows the message
        r = henri_api.post(f"/conversations/{conv_id}/messages", json={"body": "first, visible"})
        assert r.status_code == 201
        expect(page.locator("#convlist")).to_contain_text("first, visible")
        assert page.evaluate("window.__notes.length") == 0

        page.evaluate("window.__hide(true)")  # the person switched to another tab
        r = henri_api.post(f"/conversations/{conv_id}/messages", json={"body": "the secret plan"})
        assert r.status_code == 201
        page.wait_for_function("() => window.__notes.length === 1")
        note = page.evaluate("({title: __notes[0].title, body: __notes[0].options.body || ''})")
        assert note == {"title": "New message from Henri Hello", "body": ""}
        page.evaluate("window.__hide(false); __notes[0].note.onclick()")
        page.wait_for_url(re.compile(rf"/messages/{conv_id}"))
        expect(page.locator("#messages")).to_contain_text("the secret plan")


def test_the_devices_page_offers_this_browser_with_script_and_explains_without(
    open_as: Any, server: Server
) -> None:
    page = open_as("pippa")
    page.goto("/u/pippa/devices")
    expect(page.get_by_role("button", name="Turn on notifications on this device")).to_be_visible()
    expect(page.get_by_text("Browser notifications need JavaScript")).to_be_hidden()
    plain = open_as("pippa", js=False)
    plain.goto("/u/pippa/devices")
    expect(plain.get_by_text("Browser notifications need JavaScript")).to_be_visible()
    expect(plain.get_by_role("button", name="Turn on notifications on this device")).to_be_hidden()
    expect(plain.get_by_role("button", name="Save")).to_be_visible()
