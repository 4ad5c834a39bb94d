"""The rules hold on every write in a conversation, not only when it starts.

Findings M1 (the community boundary checked only at the start), M3 (free members start
conversations by inheriting a group), M4 (a blocked person reaches the blocker by editing old
messages) and L5 (read receipts and last-seen times reach a blocked person).
"""

from __future__ import annotations

from tests.support.people import dm, send
from tests.web.support import csrf_of, signed_in

API = "/api/v1"
STORE = 1


async def test_people_who_no_longer_share_a_community_cannot_write_to_each_other(
    app, client, people
) -> None:
    conv = await dm(client, people.priv, people.free)
    old = (await send(client, people.free, conv["id"], "before")).json()
    r = await client.delete(
        f"{API}/communities/{STORE}/members/{people.free.id}", headers=people.admin.headers
    )
    assert r.status_code == 204

    def refused(r) -> bool:  # type: ignore[no-untyped-def]
        return r.status_code == 403 and r.json()["error"]["code"] == "outside_community"

    assert refused(await send(client, people.priv, conv["id"], "still there?"))
    assert refused(await send(client, people.free, conv["id"], "a reply"))
    r = await client.post(
        f"{API}/messages/send",
        json={"recipient_id": people.free.id, "body": "by the alias"},
        headers=people.priv.headers,
    )
    assert refused(r)
    r = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    assert refused(r)  # starting again does not hand back the old conversation
    r = await client.patch(
        f"{API}/messages/{old['id']}", json={"body": "edited"}, headers=people.free.headers
    )
    assert refused(r)
    history = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    assert [m["body"] for m in history.json()] == ["before"]  # still readable, unchanged
    async with signed_in(app, "priv") as c:
        page = await c.get(f"/messages/{conv['id']}")
        assert 'id="read-only-note"' in page.text and "read-only" in page.text
        assert 'name="body"' in page.text and "disabled" in page.text
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={"body": "by the page", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 403 and "by the page" in r.text  # refused, nothing typed lost


async def test_an_owner_who_leaves_hands_the_group_to_someone_who_may_start(client, people) -> None:
    group = await client.post(
        f"{API}/groups",
        json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        headers=people.priv.headers,
    )
    gid = group.json()["id"]
    r = await client.post(
        f"{API}/groups/{gid}/members",
        json={"user_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 200
    r = await client.delete(
        f"{API}/groups/{gid}/members/{people.priv.id}", headers=people.priv.headers
    )
    assert r.status_code == 204
    roles = {
        p["id"]: p["role"]
        for p in (await client.get(f"{API}/groups/{gid}", headers=people.free.headers)).json()[
            "participants"
        ]
    }
    # free members joined first, but only someone who may start conversations leads
    assert roles == {people.free.id: "member", people.free2.id: "member", people.plus.id: "owner"}
    r = await client.post(
        f"{API}/groups/{gid}/members",
        json={"user_ids": [people.manager.id]},
        headers=people.free.headers,
    )
    assert r.status_code == 403


async def test_a_group_of_free_members_has_no_owner_and_nobody_adds_people(client, people) -> None:
    group = await client.post(
        f"{API}/groups",
        json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        headers=people.priv.headers,
    )
    gid = group.json()["id"]
    r = await client.delete(
        f"{API}/groups/{gid}/members/{people.priv.id}", headers=people.priv.headers
    )
    assert r.status_code == 204
    participants = (await client.get(f"{API}/groups/{gid}", headers=people.free.headers)).json()
    assert {p["role"] for p in participants["participants"]} == {"member"}
    for who in (people.free, people.free2):
        r = await client.post(
            f"{API}/groups/{gid}/members", json={"user_ids": [people.plus.id]}, headers=who.headers
        )
        assert r.status_code == 403


async def test_a_free_group_admin_cannot_add_people(client, people) -> None:
    """Adding someone is starting a conversation with them: a free member may not, even as
    the group's owner (the demoted starter below)."""
    group = await client.post(
        f"{API}/groups",
        json={"title": "Readers", "member_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    gid = group.json()["id"]
    r = await client.patch(
        f"{API}/admin/users/{people.priv.id}", json={"tier": "free"}, headers=people.admin.headers
    )
    assert r.status_code == 200
    r = await client.post(
        f"{API}/groups/{gid}/members",
        json={"user_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "initiation_not_allowed"


async def test_a_blocked_person_cannot_rewrite_old_messages_to_the_blocker(client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "hello")).json()
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code == 201
    r = await client.patch(
        f"{API}/messages/{msg['id']}", json={"body": "something nasty"}, headers=people.priv.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    history = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers
    )
    assert [m["body"] for m in history.json()] == ["hello"]


async def test_receipts_and_last_seen_do_not_cross_a_block(client, people, server) -> None:
    group = await client.post(
        f"{API}/groups",
        json={"title": "Readers", "member_ids": [people.free.id, people.plus.id]},
        headers=people.priv.headers,
    )
    gid = group.json()["id"]
    msg = (await send(client, people.plus, gid, "hello all")).json()
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free.headers
    )
    assert r.status_code == 201
    priv = await server.connect(people.priv)
    plus = await server.connect(people.plus)
    r = await client.post(
        f"{API}/conversations/{gid}/read",
        json={"message_id": msg["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 200

    def kinds(frames):  # type: ignore[no-untyped-def]
        return [f["type"] for f in frames if f["type"] != "presence"]

    assert kinds(await plus.drain()) == ["receipt.read"]
    assert kinds(await priv.drain()) == []  # free blocked priv
    # nor does priv see when free was last online, or how far free has read
    for who in (people.priv,):
        view = (await client.get(f"{API}/conversations/{gid}", headers=who.headers)).json()
        free = next(p for p in view["participants"] if p["id"] == people.free.id)
        assert free["last_read_message_id"] == 0 and free["last_seen_at"] is None
        profile = (await client.get(f"{API}/users/{people.free.id}", headers=who.headers)).json()
        assert profile["last_seen_at"] is None
    view = (await client.get(f"{API}/conversations/{gid}", headers=people.plus.headers)).json()
    free = next(p for p in view["participants"] if p["id"] == people.free.id)
    assert free["last_read_message_id"] == msg["id"]
