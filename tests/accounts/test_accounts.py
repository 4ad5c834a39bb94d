"""Profiles, search inside the community boundary, communities, contacts, blocks, admin users."""

API = "/api/v1"


async def test_me_shows_tier_role_and_communities(client, people):
    r = await client.get(f"{API}/auth/me", headers=people.outsider.headers)
    body = r.json()
    assert (body["tier"], body["role"]) == ("privileged", "member")
    assert [c["slug"] for c in body["communities"]] == ["riverside"]


async def test_search_is_limited_to_shared_communities(client, people):
    r = await client.get(f"{API}/users/search", params={"q": ""}, headers=people.priv.headers)
    names = {u["username"] for u in r.json()}
    assert "free" in names and "admin" in names
    assert "outsider" not in names and "priv" not in names
    assert all("email" not in u for u in r.json())
    r = await client.get(f"{API}/users/search", params={"q": "fre"}, headers=people.priv.headers)
    assert {u["username"] for u in r.json()} == {"free", "free2"}
    r = await client.get(f"{API}/users/search", params={"q": "a"}, headers=people.outsider.headers)
    assert r.json() == []


async def test_profiles_outside_the_community_are_not_found(client, people):
    r = await client.get(f"{API}/users/{people.outsider.id}", headers=people.priv.headers)
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    r = await client.get(f"{API}/users/{people.free.id}", headers=people.priv.headers)
    assert r.status_code == 200 and "email" not in r.json()
    r = await client.get(f"{API}/users/{people.outsider.id}", headers=people.admin.headers)
    assert r.status_code == 200 and r.json()["email"] == "outsider@example.com"


async def test_update_own_profile_only(client, people):
    r = await client.put(
        f"{API}/users/{people.free.id}",
        json={"display_name": "  Frida  ", "bio": "Reads sci-fi."},
        headers=people.free.headers,
    )
    assert r.status_code == 200
    assert (r.json()["display_name"], r.json()["bio"]) == ("Frida", "Reads sci-fi.")
    r = await client.put(
        f"{API}/users/{people.priv.id}", json={"bio": "hacked"}, headers=people.free.headers
    )
    assert r.status_code == 403
    r = await client.put(
        f"{API}/users/{people.free.id}", json={"tier": "privileged"}, headers=people.free.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    r = await client.put(
        f"{API}/users/{people.free.id}",
        json={"display_name": "a\x00b"},
        headers=people.free.headers,
    )
    assert r.status_code == 422 and "display_name" in r.json()["error"]["fields"]
    r = await client.put(
        f"{API}/users/{people.free.id}", json={"nickname": "x"}, headers=people.free.headers
    )
    assert r.status_code == 422


async def test_admin_changes_tier_and_role_with_audit(client, people):
    r = await client.patch(
        f"{API}/admin/users/{people.free.id}",
        json={"tier": "privileged", "role": "manager"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200 and (r.json()["tier"], r.json()["role"]) == (
        "privileged",
        "manager",
    )
    r = await client.patch(
        f"{API}/admin/users/{people.free.id}", json={"tier": "gold"}, headers=people.admin.headers
    )
    assert r.status_code == 422
    r = await client.patch(
        f"{API}/admin/users/{people.free2.id}",
        json={"tier": "privileged"},
        headers=people.manager.headers,
    )
    assert r.status_code == 403
    r = await client.get(
        f"{API}/admin/audit", params={"action": "user.tier"}, headers=people.admin.headers
    )
    [entry] = r.json()
    assert entry["actor_id"] == people.admin.id and entry["target_id"] == people.free.id
    assert entry["data"]["before"] == "free" and entry["data"]["after"] == "privileged"
    r = await client.get(f"{API}/admin/users", params={"q": "free"}, headers=people.admin.headers)
    assert {u["username"] for u in r.json()} == {"free", "free2"}


async def test_communities(client, people):
    r = await client.get(f"{API}/communities", headers=people.priv.headers)
    assert [c["slug"] for c in r.json()] == ["store"]
    r = await client.get(f"{API}/communities", headers=people.admin.headers)
    assert {c["slug"] for c in r.json()} == {"store", "riverside"}
    r = await client.post(
        f"{API}/communities", json={"name": "Poetry", "slug": "poetry"}, headers=people.priv.headers
    )
    assert r.status_code == 403
    r = await client.post(
        f"{API}/communities",
        json={"name": "Poetry", "slug": "poetry"},
        headers=people.admin.headers,
    )
    assert r.status_code == 201
    poetry = r.json()["id"]
    r = await client.post(
        f"{API}/communities", json={"name": "Again", "slug": "poetry"}, headers=people.admin.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "slug_taken"
    r = await client.post(
        f"{API}/communities",
        json={"name": "Bad", "slug": "No Spaces"},
        headers=people.admin.headers,
    )
    assert r.status_code == 422
    # admins move members in; then the outsider and priv share a community
    r = await client.post(
        f"{API}/communities/{poetry}/members",
        json={"user_ids": [people.outsider.id, people.priv.id]},
        headers=people.admin.headers,
    )
    assert r.status_code == 200 and r.json()["added"] == 2
    r = await client.get(f"{API}/users/{people.outsider.id}", headers=people.priv.headers)
    assert r.status_code == 200
    r = await client.get(f"{API}/communities/{poetry}/members", headers=people.admin.headers)
    assert {u["username"] for u in r.json()} == {"outsider", "priv"}
    # a manager of the store manages the store's members, not poetry's
    store = 1
    r = await client.get(f"{API}/communities/{store}/members", headers=people.manager.headers)
    assert r.status_code == 200
    r = await client.get(f"{API}/communities/{poetry}/members", headers=people.manager.headers)
    assert r.status_code == 403
    r = await client.get(f"{API}/communities/{store}/members", headers=people.priv.headers)
    assert r.status_code == 403
    r = await client.delete(
        f"{API}/communities/{poetry}/members/{people.outsider.id}", headers=people.admin.headers
    )
    assert r.status_code == 204
    r = await client.get(f"{API}/users/{people.outsider.id}", headers=people.priv.headers)
    assert r.status_code == 404
    r = await client.get(f"{API}/communities/999/members", headers=people.admin.headers)
    assert r.status_code == 404


async def test_contacts(client, people):
    r = await client.post(
        f"{API}/contacts", json={"user_id": people.free.id}, headers=people.priv.headers
    )
    assert r.status_code == 201
    r = await client.post(
        f"{API}/contacts", json={"user_id": people.outsider.id}, headers=people.priv.headers
    )
    assert r.status_code == 404
    r = await client.get(f"{API}/contacts", headers=people.priv.headers)
    assert [u["username"] for u in r.json()] == ["free"]
    assert (
        await client.delete(f"{API}/contacts/{people.free.id}", headers=people.priv.headers)
    ).status_code == 204
    assert (
        await client.delete(f"{API}/contacts/{people.free.id}", headers=people.priv.headers)
    ).status_code == 404


async def test_blocks(client, people):
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code == 201
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.free.id}, headers=people.free.headers
    )
    assert r.status_code == 403
    r = await client.get(f"{API}/blocks", headers=people.free.headers)
    assert [u["username"] for u in r.json()] == ["priv"]
    assert (
        await client.delete(f"{API}/blocks/{people.priv.id}", headers=people.free.headers)
    ).status_code == 204
    assert (await client.get(f"{API}/blocks", headers=people.free.headers)).json() == []


async def test_search_takes_underscores_and_percent_signs_literally(client, people, app):
    from pigeon.accounts import service as accounts

    async with app.state.runtime.uow_scope() as uow:
        for name in ("book_worm", "bookxworm", "100pct"):
            await accounts.create_user(
                uow,
                email=f"{name}@example.com",
                username=name,
                password="long enough password",
                passwords=app.state.runtime.passwords,
                display_name="100% reader" if name == "100pct" else None,
            )
    r = await client.get(f"{API}/users/search", params={"q": "book_w"}, headers=people.priv.headers)
    assert [u["username"] for u in r.json()] == ["book_worm"]
    r = await client.get(f"{API}/users/search", params={"q": "0%"}, headers=people.priv.headers)
    assert [u["username"] for u in r.json()] == ["100pct"]
