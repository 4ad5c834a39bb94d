"""The installable app's files and the devices page, as a browser without script gets them."""

from __future__ import annotations

import html
from typing import Any

from tests.support.push import Browser, PushService
from tests.web.support import browser, csrf_of, post_form, signed_in


async def listed(client: Any, who: Any) -> list[Any]:
    r = await client.get("/api/v1/push/subscriptions", headers=who.headers)
    return list(r.json())


async def test_the_manifest_names_the_community_and_its_icons_exist(app, client) -> None:
    r = await client.get("/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/manifest+json")
    manifest = r.json()
    community = app.state.settings.default_community_name
    assert manifest["name"] == f"{community} · Pigeon" and manifest["display"] == "standalone"
    assert manifest["start_url"] == "/messages"
    assert any(i.get("purpose") == "maskable" for i in manifest["icons"])
    for icon in manifest["icons"]:
        got = await client.get(icon["src"])
        assert got.status_code == 200 and got.content.startswith(b"\x89PNG")


async def test_every_page_links_the_manifest_and_the_touch_icon(app, people) -> None:
    async with browser(app) as c:
        page = (await c.get("/login")).text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert 'name="theme-color"' in page
    assert 'rel="apple-touch-icon" href="/static/icons/apple-touch-icon.png"' in page


async def test_the_service_worker_is_served_at_the_root_and_always_revalidated(client) -> None:
    r = await client.get("/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert "__VERSION__" not in r.text and 'var VERSION = "' in r.text
    assert (await client.get("/sw.js")).text == r.text  # stable while the files are


async def test_the_offline_page_holds_nobodys_data(app, people) -> None:
    async with signed_in(app, "priv") as c:
        r = await c.get("/offline")
    assert r.status_code == 200
    assert "You are offline" in r.text and 'id="offline-retry"' in r.text
    assert "Priv" not in r.text and "data-user-id" not in r.text
    assert 'name="csrf-token" content=""' in r.text
    assert "set-cookie" not in r.headers


async def test_the_devices_page_lists_devices_and_removes_them_without_script(
    app, client, people, push_service: PushService
) -> None:
    for name in ("phone", "laptop"):
        r = await client.post(
            "/api/v1/push/subscriptions",
            json=Browser().subscription(push_service.endpoint(name)),
            headers={**people.priv.headers, "User-Agent": f"Mozilla/5.0 (X11; Linux) {name}"},
        )
        assert r.status_code == 201
    async with signed_in(app, "priv") as c:
        profile = (await c.get("/u/priv")).text
        assert 'href="/u/priv/devices"' in profile
        page = await c.get("/u/priv/devices")
        assert page.status_code == 200
        text = html.unescape(page.text)
        assert "Browser notifications need JavaScript" in text  # hidden by the script when it runs
        assert text.count('class="device"') == 2
        devices = (
            await client.get("/api/v1/push/subscriptions", headers=people.priv.headers)
        ).json()
        r = await post_form(c, "/u/priv/devices", f"/u/priv/devices/{devices[0]['id']}/remove", {})
        assert r.status_code == 303 and r.headers["location"].endswith("notice=removed")
        shown = html.unescape((await c.get(r.headers["location"])).text)
        assert "That device gets no more notifications." in shown
        assert shown.count('class="device"') == 1
        # someone else's device is not found; neither is someone else's page
        async with signed_in(app, "free") as other:
            theirs = await post_form(
                other, "/u/free/devices", f"/u/free/devices/{devices[1]['id']}/remove", {}
            )
            assert theirs.status_code == 404
            assert (await other.get("/u/priv/devices")).status_code == 404
        # without the form's CSRF token nothing happens
        r = await c.post(f"/u/priv/devices/{devices[1]['id']}/remove")
        assert r.status_code == 403
        assert (
            len(
                (await client.get("/api/v1/push/subscriptions", headers=people.priv.headers)).json()
            )
            == 1
        )


async def test_the_push_switch_on_the_devices_page(app, client, people) -> None:
    async with signed_in(app, "free") as c:
        page = (await c.get("/u/free/devices")).text
        assert 'name="push" value="1" checked' in page
        r = await c.post(
            "/u/free/devices/setting", data={"csrf_token": csrf_of(page)}
        )  # unchecked: off
        assert r.headers["location"].endswith("notice=off")
        got = await client.get("/api/v1/push/settings", headers=people.free.headers)
        assert got.json() == {"push": False}
        page = (await c.get("/u/free/devices")).text
        assert 'name="push" value="1" checked' not in page
        await post_form(c, "/u/free/devices", "/u/free/devices/setting", {"push": "1"})
        got = await client.get("/api/v1/push/settings", headers=people.free.headers)
        assert got.json() == {"push": True}
