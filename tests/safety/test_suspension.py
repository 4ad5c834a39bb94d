"""Suspensions: no sign-in, no refresh, no sending, tokens refused; they end on time."""

from __future__ import annotations

from tests.safety.conftest import travel
from tests.support.people import PASSWORD, dm, send

API = "/api/v1"


async def login(client, username):  # type: ignore[no-untyped-def]
    return await client.post(f"{API}/auth/login", json={"login": username, "password": PASSWORD})


async def test_a_suspended_person_is_locked_out_until_it_ends(app, client, people, clock):
    conv = await dm(client, people.priv, people.free)
    signed_in = (await login(client, "free")).json()

    r = await client.post(
        f"{API}/admin/users/{people.free.id}/suspend",
        json={"until": "2030-01-01T00:00:00Z", "reason": "cooling off"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200, r.text
    until = r.json()["suspended_until"]

    # the token they hold stops working at once on this process
    r = await client.get(f"{API}/auth/me", headers=people.free.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    r = await send(client, people.free, conv["id"], "hi")
    assert r.status_code == 403
    r = await login(client, "free")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    assert r.status_code in (401, 403)

    # their messages stay
    await send(client, people.priv, conv["id"], "are you there?")
    r = await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers)
    assert r.status_code == 200

    [entry] = (
        await client.get(
            f"{API}/admin/audit", params={"action": "user.suspended"}, headers=people.admin.headers
        )
    ).json()
    assert entry["target_id"] == people.free.id and entry["data"]["until"] == until.replace(
        "Z", "+00:00"
    )

    # the suspension ends by itself
    import datetime as dt

    end = dt.datetime(2030, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
    travel(app, people, seconds=(end - clock.now()).total_seconds())
    assert (await login(client, "free")).status_code == 200
    r = await send(client, people.free, conv["id"], "back")
    assert r.status_code == 201, r.text


async def test_lifting_a_suspension_and_who_may_suspend(client, people):
    r = await client.post(
        f"{API}/admin/users/{people.free.id}/suspend", json={}, headers=people.manager.headers
    )
    assert r.status_code == 200 and r.json()["suspended_until"].startswith("9999")
    assert (await login(client, "free")).status_code == 403

    r = await client.delete(
        f"{API}/admin/users/{people.free.id}/suspend", headers=people.manager.headers
    )
    assert r.status_code == 200
    assert (await login(client, "free")).status_code == 200

    r = await client.post(
        f"{API}/admin/users/{people.admin.id}/suspend", json={}, headers=people.manager.headers
    )
    assert r.status_code == 403
    r = await client.post(
        f"{API}/admin/users/{people.outsider.id}/suspend", json={}, headers=people.manager.headers
    )
    assert r.status_code == 404  # not in the manager's community
    r = await client.post(
        f"{API}/admin/users/{people.free2.id}/suspend", json={}, headers=people.priv.headers
    )
    assert r.status_code == 403
    r = await client.post(
        f"{API}/admin/users/{people.free2.id}/suspend",
        json={"until": "2001-01-01T00:00:00Z"},
        headers=people.admin.headers,
    )
    assert r.status_code == 422
    actions = [
        e["action"]
        for e in (await client.get(f"{API}/admin/audit", headers=people.admin.headers)).json()
    ]
    assert actions[:2] == ["user.unsuspended", "user.suspended"]
