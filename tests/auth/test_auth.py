"""Registration, sign-in, token rotation and revocation, as a client sees them."""

import datetime as dt

API = "/api/v1"


async def register(client, username="reader", email=None, **extra):
    body = {
        "email": email or f"{username}@example.com",
        "username": username,
        "password": "long enough password",
        **extra,
    }
    return await client.post(f"{API}/auth/register", json=body)


async def test_register_returns_user_and_tokens(client):
    r = await register(client, display_name="A Reader")
    assert r.status_code == 201
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["user"]["username"] == "reader"
    assert body["user"]["display_name"] == "A Reader"
    assert body["user"]["tier"] == "free" and body["user"]["role"] == "member"
    assert body["user"]["email"] == "reader@example.com"
    me = await client.get(
        f"{API}/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert [c["slug"] for c in me.json()["communities"]] == ["store"]


async def test_register_conflicts_and_bad_input(client):
    assert (await register(client)).status_code == 201
    r = await register(client, email="other@example.com")
    assert r.status_code == 409 and r.json()["error"]["code"] == "username_taken"
    r = await register(client, username="other", email="READER@example.com")
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken"
    r = await register(client, username="x")  # too short
    assert r.status_code == 422 and "username" in r.json()["error"]["fields"]
    r = await client.post(
        f"{API}/auth/register",
        json={"email": "not-an-email", "username": "okname", "password": "long enough password"},
    )
    assert r.status_code == 422 and "email" in r.json()["error"]["fields"]
    r = await client.post(
        f"{API}/auth/register",
        json={"email": "a@example.com", "username": "okname", "password": "short"},
    )
    assert r.status_code == 422 and "password" in r.json()["error"]["fields"]


async def test_closed_registration(client, app):
    app.state.settings.registration = "invite"
    r = await register(client)
    assert r.status_code == 403 and r.json()["error"]["code"] == "registration_closed"


async def test_login_by_username_or_email(client):
    await register(client)
    for login in ("reader", "Reader@Example.com"):
        r = await client.post(
            f"{API}/auth/login", json={"login": login, "password": "long enough password"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["user"]["username"] == "reader"
    r = await client.post(
        f"{API}/auth/login", json={"login": "reader", "password": "wrong password"}
    )
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"
    r = await client.post(f"{API}/auth/login", json={"login": "nobody", "password": "whatever"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_credentials"


async def test_refresh_rotates_and_reuse_revokes_the_family(client, clock):
    tokens = (await register(client)).json()
    first = tokens["refresh_token"]
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert second != first
    # the spent token comes back, past the grace window for racing refreshes: a thief or a
    # replay; the whole family ends
    clock.advance(dt.timedelta(seconds=31))
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": second})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_refresh_token"


async def test_logout_revokes_refresh(client):
    tokens = (await register(client)).json()
    r = await client.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401


async def test_access_token_expires(client, clock):
    tokens = (await register(client)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get(f"{API}/auth/me", headers=headers)).status_code == 200
    clock.advance(dt.timedelta(minutes=16))
    r = await client.get(f"{API}/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_token"


async def test_bad_tokens_are_refused(client):
    for header in ({"Authorization": "Bearer nonsense"}, {"Authorization": "Bearer a.b.c"}, {}):
        r = await client.get(f"{API}/auth/me", headers=header)
        assert r.status_code == 401
        assert r.json()["error"]["code"] in ("invalid_token", "not_authenticated")


async def test_disabled_account_cannot_sign_in(client, people):
    r = await client.patch(
        f"{API}/admin/users/{people.free.id}",
        json={"is_active": False},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    r = await client.post(
        f"{API}/auth/login", json={"login": "free", "password": "correct horse battery"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_disabled"
