"""Who may act on whom: joining communities, removing and suspending people, seeing people.

Findings H1 (a manager pulls anyone into their community, then suspends them), M2 (people in
other communities can be enumerated) and their siblings (contacts across a block).
"""

from __future__ import annotations

from tests.support.people import Person

API = "/api/v1"
STORE = 1


async def promote(client, people, who: Person, role: str) -> None:  # type: ignore[no-untyped-def]
    r = await client.patch(
        f"{API}/admin/users/{who.id}", json={"role": role}, headers=people.admin.headers
    )
    assert r.status_code == 200, r.text


async def test_a_manager_cannot_pull_a_stranger_into_their_community(client, people) -> None:
    r = await client.post(
        f"{API}/communities/{STORE}/members",
        json={"user_ids": [people.outsider.id]},
        headers=people.manager.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "consent_required"
    # so the stranger stays out of the manager's reach: unseen, and not to be suspended
    r = await client.get(f"{API}/users/{people.outsider.id}", headers=people.manager.headers)
    assert r.status_code == 404
    r = await client.post(
        f"{API}/admin/users/{people.outsider.id}/suspend",
        json={"until": "2999-01-01T00:00:00Z"},
        headers=people.manager.headers,
    )
    assert r.status_code == 404
    r = await client.post("/api/v1/auth/login", json={"login": "outsider", "password": "x" * 8})
    assert r.status_code == 401  # wrong password, but not suspended
    # an admin may add someone directly
    r = await client.post(
        f"{API}/communities/{STORE}/members",
        json={"user_ids": [people.outsider.id]},
        headers=people.admin.headers,
    )
    assert r.status_code == 200 and r.json()["added"] == 1


async def test_a_manager_never_removes_or_suspends_staff_of_their_rank_or_above(
    client, people
) -> None:
    await promote(client, people, people.plus, "manager")
    for target in (people.plus, people.admin):  # a fellow manager, an admin
        r = await client.delete(
            f"{API}/communities/{STORE}/members/{target.id}", headers=people.manager.headers
        )
        assert r.status_code == 403 and r.json()["error"]["code"] == "outranked", r.text
        r = await client.post(
            f"{API}/admin/users/{target.id}/suspend", json={}, headers=people.manager.headers
        )
        assert r.status_code == 403, r.text
    # members of lower rank, yes
    r = await client.delete(
        f"{API}/communities/{STORE}/members/{people.free2.id}", headers=people.manager.headers
    )
    assert r.status_code == 204
    r = await client.post(
        f"{API}/admin/users/{people.free.id}/suspend", json={}, headers=people.manager.headers
    )
    assert r.status_code == 200
    # an owner outranks a manager
    await promote(client, people, people.priv, "owner")
    r = await client.post(
        f"{API}/admin/users/{people.plus.id}/suspend", json={}, headers=people.priv.headers
    )
    assert r.status_code == 200


async def test_someone_you_cannot_see_is_answered_like_someone_who_does_not_exist(
    client, people
) -> None:
    nobody = 999_999
    for path, body in (
        ("/blocks", {"user_id": "{id}"}),
        ("/contacts", {"user_id": "{id}"}),
        ("/conversations", {"participant_ids": ["{id}"]}),
        ("/conversations", {"participant_ids": ["{id}"], "kind": "group", "title": "Hi"}),
        ("/messages/send", {"recipient_id": "{id}", "body": "hello"}),
    ):

        def fill(uid: int, body: dict = body) -> dict:  # type: ignore[type-arg]
            return {
                k: (uid if v == "{id}" else [uid] if v == ["{id}"] else v) for k, v in body.items()
            }

        hidden = await client.post(
            f"{API}{path}", json=fill(people.outsider.id), headers=people.priv.headers
        )
        absent = await client.post(f"{API}{path}", json=fill(nobody), headers=people.priv.headers)
        assert hidden.status_code == absent.status_code == 404, (path, hidden.text, absent.text)
        assert hidden.json()["error"]["code"] == absent.json()["error"]["code"]
        message = hidden.json()["error"]["message"]
        assert (
            message.replace(str(people.outsider.id), str(nobody))
            == absent.json()["error"]["message"]
        )
        assert "Olga" not in message and "Outsider" not in message
    for path in ("/users/{}", "/messages/conversation/{}"):
        hidden = await client.get(
            f"{API}{path.format(people.outsider.id)}", headers=people.priv.headers
        )
        absent = await client.get(f"{API}{path.format(nobody)}", headers=people.priv.headers)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json() == absent.json()


async def test_a_blocked_person_cannot_add_the_blocker_as_a_contact(client, people) -> None:
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code == 201
    r = await client.post(
        f"{API}/contacts", json={"user_id": people.free.id}, headers=people.priv.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    r = await client.get(f"{API}/contacts", headers=people.priv.headers)
    assert r.json() == []


async def test_ids_are_strict_integers(client, people) -> None:
    for value in (True, "1", 1.0):
        r = await client.post(f"{API}/blocks", json={"user_id": value}, headers=people.priv.headers)
        assert r.status_code == 422 and "user_id" in r.json()["error"]["fields"], value
