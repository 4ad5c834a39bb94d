"""Conversations and messages end to end: one DM per pair, idempotent sends, history, unread."""

import asyncio

from tests.support.people import dm, send

API = "/api/v1"


async def history(client, who, conv_id, **params):
    r = await client.get(
        f"{API}/conversations/{conv_id}/messages", params=params, headers=who.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def unread(client, who):
    return (await client.get(f"{API}/unread", headers=who.headers)).json()


async def test_one_direct_conversation_per_pair(client, people):
    r = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 201
    conv = r.json()
    assert conv["kind"] == "direct"
    assert {p["id"] for p in conv["participants"]} == {people.priv.id, people.free.id}
    r = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 200 and r.json()["id"] == conv["id"]
    r = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.priv.id]},
        headers=people.free.headers,
    )
    assert r.status_code == 200 and r.json()["id"] == conv["id"]


async def test_both_start_the_same_dm_at_once(client, people):
    def a():
        return client.post(
            f"{API}/conversations",
            json={"participant_ids": [people.plus.id]},
            headers=people.priv.headers,
        )

    def b():
        return client.post(
            f"{API}/conversations",
            json={"participant_ids": [people.priv.id]},
            headers=people.plus.headers,
        )

    results = await asyncio.gather(a(), b(), a(), b(), a(), b())
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    assert len({r.json()["id"] for r in results}) == 1
    assert sorted(r.status_code for r in results) == [200] * 5 + [201]
    # one conversation for each of them: in the inbox of whoever started it first, and a
    # message request to the other (whichever won the race)
    for who in (people.priv, people.plus):
        inbox = (await client.get(f"{API}/conversations", headers=who.headers)).json()
        asked = await client.get(
            f"{API}/conversations", params={"requests": "true"}, headers=who.headers
        )
        assert len(inbox) + len(asked.json()) == 1


async def test_same_client_msg_id_returns_the_original(client, people):
    conv = await dm(client, people.priv, people.free)
    first = await send(client, people.priv, conv["id"], "once", client_msg_id="m-1")
    again = await send(client, people.priv, conv["id"], "once", client_msg_id="m-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    # another sender may use the same id for their own message
    other = await send(client, people.free, conv["id"], "mine", client_msg_id="m-1")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert [m["body"] for m in await history(client, people.free, conv["id"])] == ["once", "mine"]
    assert (await unread(client, people.free))["total"] == 0  # they sent after it: all read


async def test_concurrent_retries_make_one_message(client, people):
    conv = await dm(client, people.priv, people.free)
    results = await asyncio.gather(
        *[send(client, people.priv, conv["id"], "retry me", client_msg_id="same") for _ in range(8)]
    )
    assert sorted(r.status_code for r in results) == [200] * 7 + [201]
    assert len({r.json()["id"] for r in results}) == 1
    assert len(await history(client, people.free, conv["id"])) == 1
    assert (await unread(client, people.free))["total"] == 1


async def test_history_pages_by_id(client, people):
    conv = await dm(client, people.priv, people.free)
    ids = []
    for i in range(120):
        ids.append((await send(client, people.priv, conv["id"], f"m{i}")).json()["id"])
    page = await history(client, people.free, conv["id"])
    assert [m["id"] for m in page] == ids[-50:]  # default 50, oldest first
    older = await history(client, people.free, conv["id"], before_id=page[0]["id"])
    assert [m["id"] for m in older] == ids[-100:-50]
    oldest = await history(client, people.free, conv["id"], before_id=older[0]["id"], limit=200)
    assert [m["id"] for m in oldest] == ids[:20]
    newer = await history(client, people.free, conv["id"], after_id=ids[9], limit=5)
    assert [m["id"] for m in newer] == ids[10:15]
    r = await client.get(
        f"{API}/conversations/{conv['id']}/messages",
        params={"limit": 201},
        headers=people.free.headers,
    )
    assert r.status_code == 422


async def test_outsiders_cannot_read_or_write(client, people):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "private")
    for url in (f"{API}/conversations/{conv['id']}", f"{API}/conversations/{conv['id']}/messages"):
        r = await client.get(url, headers=people.plus.headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "conversation_not_found"
    r = await send(client, people.plus, conv["id"], "let me in")
    assert r.status_code == 404
    r = await client.get(f"{API}/conversations/424242", headers=people.plus.headers)
    assert r.status_code == 404


async def test_unread_counts_and_read_marks(client, people):
    conv = await dm(client, people.priv, people.free)
    sent = [(await send(client, people.priv, conv["id"], f"n{i}")).json() for i in range(3)]
    assert await unread(client, people.free) == {
        "total": 3,
        "conversations": {str(conv["id"]): 3},
        "requests": 0,
    }
    assert (await unread(client, people.priv))["total"] == 0
    r = await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": sent[1]["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 200 and r.json()["unread_count"] == 1
    listing = (await client.get(f"{API}/conversations", headers=people.free.headers)).json()
    assert listing[0]["unread_count"] == 1
    assert listing[0]["last_message"]["body"] == "n2"
    r = await client.put(f"{API}/messages/{sent[2]['id']}/read", headers=people.free.headers)
    assert r.status_code == 200
    assert (await unread(client, people.free))["total"] == 0
    # reading backwards never un-reads
    await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": sent[0]["id"]},
        headers=people.free.headers,
    )
    assert (await unread(client, people.free))["total"] == 0
    r = await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": 999999},
        headers=people.free.headers,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "message_not_found"


async def test_conversation_list_is_latest_first_and_pages(client, people):
    a = await dm(client, people.priv, people.free)
    b = await dm(client, people.priv, people.free2)
    c = await dm(client, people.priv, people.plus)
    await send(client, people.priv, a["id"], "bump a")
    r = await client.get(f"{API}/conversations", headers=people.priv.headers)
    assert [x["id"] for x in r.json()] == [a["id"], c["id"], b["id"]]
    r = await client.get(f"{API}/conversations", params={"limit": 2}, headers=people.priv.headers)
    assert [x["id"] for x in r.json()] == [a["id"], c["id"]]
    nxt = r.headers["X-Next-Before"]
    r = await client.get(
        f"{API}/conversations", params={"limit": 2, "before": nxt}, headers=people.priv.headers
    )
    assert [x["id"] for x in r.json()] == [b["id"]]


async def test_edit_and_delete_own_messages(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "typo")).json()
    r = await client.patch(
        f"{API}/messages/{msg['id']}", json={"body": "fixed"}, headers=people.priv.headers
    )
    assert r.status_code == 200 and r.json()["body"] == "fixed" and r.json()["edited_at"]
    r = await client.patch(
        f"{API}/messages/{msg['id']}", json={"body": "not yours"}, headers=people.free.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_message_author"
    r = await client.delete(f"{API}/messages/{msg['id']}", headers=people.plus.headers)
    assert r.status_code == 404
    assert (await unread(client, people.free))["total"] == 1
    r = await client.delete(f"{API}/messages/{msg['id']}", headers=people.priv.headers)
    assert r.status_code == 204
    [tomb] = await history(client, people.free, conv["id"])
    assert tomb["deleted"] is True and tomb["body"] == "" and tomb["id"] == msg["id"]
    assert (await unread(client, people.free))["total"] == 0
    r = await client.patch(
        f"{API}/messages/{msg['id']}", json={"body": "undead"}, headers=people.priv.headers
    )
    assert r.status_code == 404


async def test_replies_stay_in_their_conversation(client, people):
    a = await dm(client, people.priv, people.free)
    b = await dm(client, people.priv, people.plus)
    first = (await send(client, people.priv, a["id"], "question")).json()
    r = await send(client, people.free, a["id"], "answer", reply_to_id=first["id"])
    assert r.status_code == 201 and r.json()["reply_to_id"] == first["id"]
    r = await send(client, people.priv, b["id"], "cross", reply_to_id=first["id"])
    assert r.status_code == 422


async def test_groups(client, people):
    r = await client.post(
        f"{API}/groups",
        json={"title": "Book club", "member_ids": [people.free.id, people.plus.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 201
    group = r.json()
    assert group["kind"] == "group" and group["title"] == "Book club"
    roles = {p["id"]: p["role"] for p in group["participants"]}
    assert roles == {people.priv.id: "owner", people.free.id: "member", people.plus.id: "member"}
    r = await client.post(
        f"{API}/groups/{group['id']}/messages",
        json={"body": "welcome"},
        headers=people.free.headers,
    )
    assert r.status_code == 201
    assert (await unread(client, people.plus))["total"] == 1
    # members cannot manage; the owner can
    r = await client.post(
        f"{API}/groups/{group['id']}/members",
        json={"user_ids": [people.free2.id]},
        headers=people.free.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_group_admin"
    r = await client.post(
        f"{API}/groups/{group['id']}/members",
        json={"user_ids": [people.free2.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 200 and len(r.json()["participants"]) == 4
    # a newcomer does not inherit old unread messages
    assert (await unread(client, people.free2))["total"] == 0
    r = await client.get(f"{API}/groups", headers=people.free2.headers)
    assert [g["id"] for g in r.json()] == [group["id"]]
    r = await client.delete(
        f"{API}/groups/{group['id']}/members/{people.plus.id}", headers=people.free.headers
    )
    assert r.status_code == 403
    r = await client.delete(
        f"{API}/groups/{group['id']}/members/{people.plus.id}", headers=people.priv.headers
    )
    assert r.status_code == 204
    r = await client.get(f"{API}/groups/{group['id']}", headers=people.plus.headers)
    assert r.status_code == 404
    # anyone may leave
    r = await client.delete(
        f"{API}/groups/{group['id']}/members/{people.free.id}", headers=people.free.headers
    )
    assert r.status_code == 204
    r = await client.patch(
        f"{API}/conversations/{group['id']}",
        json={"title": "Poetry circle"},
        headers=people.priv.headers,
    )
    assert r.status_code == 200 and r.json()["title"] == "Poetry circle"
    r = await client.delete(f"{API}/groups/{group['id']}", headers=people.free2.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_group_owner"
    r = await client.delete(f"{API}/groups/{group['id']}", headers=people.priv.headers)
    assert r.status_code == 204
    assert (await client.get(f"{API}/groups", headers=people.free2.headers)).json() == []
    r = await client.get(f"{API}/groups/{group['id']}", headers=people.priv.headers)
    assert r.status_code == 404


async def test_a_dm_is_not_a_group(client, people):
    conv = await dm(client, people.priv, people.free)
    r = await client.get(f"{API}/groups/{conv['id']}", headers=people.priv.headers)
    assert r.status_code == 404
    r = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.free.id, people.plus.id], "kind": "direct"},
        headers=people.priv.headers,
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/conversations",
        json={"participant_ids": [people.priv.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 422


async def test_aliases(client, people):
    r = await client.post(
        f"{API}/messages/send",
        json={"recipient_id": people.free.id, "body": "via alias", "client_msg_id": "a1"},
        headers=people.priv.headers,
    )
    assert r.status_code == 201
    msg = r.json()
    r = await client.post(
        f"{API}/messages/send",
        json={"recipient_id": people.free.id, "body": "via alias", "client_msg_id": "a1"},
        headers=people.priv.headers,
    )
    assert r.status_code == 200 and r.json()["id"] == msg["id"]
    r = await client.get(
        f"{API}/messages/conversation/{people.priv.id}", headers=people.free.headers
    )
    assert [m["body"] for m in r.json()] == ["via alias"]
    r = await client.get(
        f"{API}/messages/conversation/{people.plus.id}", headers=people.free.headers
    )
    assert r.status_code == 200 and r.json() == []
    r = await client.get(
        f"{API}/messages/conversation/{people.outsider.id}", headers=people.free.headers
    )
    assert r.status_code == 404
    r = await client.delete(f"{API}/messages/{msg['id']}", headers=people.priv.headers)
    assert r.status_code == 204


async def test_deleting_a_message_a_blocker_never_counted_leaves_their_count(client, people):
    r = await client.post(
        f"{API}/groups",
        json={"title": "Club", "member_ids": [people.free.id, people.plus.id]},
        headers=people.priv.headers,
    )
    group = r.json()["id"]
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.plus.headers
    )
    assert r.status_code == 201
    await send(client, people.free, group, "from free")  # plus: 1 unread
    msg = (await send(client, people.priv, group, "from priv")).json()  # plus never sees it
    assert (await unread(client, people.plus))["total"] == 1
    assert (await unread(client, people.free))["total"] == 1
    r = await client.delete(f"{API}/messages/{msg['id']}", headers=people.priv.headers)
    assert r.status_code == 204
    assert (await unread(client, people.free))["total"] == 0
    assert (await unread(client, people.plus))["total"] == 1  # free's message is still unread
