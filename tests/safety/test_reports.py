"""Reporting messages and the moderation queue, through the API."""

from __future__ import annotations

from typing import Any

from tests.support.people import Person, dm, send

API = "/api/v1"


async def report(
    client: Any, who: Person, message_id: int, reason: str = "harassment", **extra: Any
) -> Any:
    return await client.post(
        f"{API}/messages/{message_id}/report", json={"reason": reason, **extra}, headers=who.headers
    )


async def queue(client: Any, who: Person, **params: Any) -> Any:
    return await client.get(f"{API}/admin/reports", params=params, headers=who.headers)


async def audit(client: Any, people: Any, action: str) -> list[dict[str, Any]]:
    r = await client.get(
        f"{API}/admin/audit", params={"action": action}, headers=people.admin.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


async def test_participant_reports_and_a_repeat_is_merged(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "you are awful")).json()

    r = await report(client, people.free, msg["id"], "harassment", details="rude")
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "open" and first["reason"] == "harassment"

    r = await report(client, people.free, msg["id"], "hate", details="and worse")
    assert r.status_code == 200
    assert r.json()["id"] == first["id"] and r.json()["reason"] == "hate"
    assert r.json()["details"] == "rude\nand worse"

    items = (await queue(client, people.admin)).json()
    assert [i["id"] for i in items] == [first["id"]]
    item = items[0]
    assert item["body"] == "you are awful"
    assert item["reporter"]["id"] == people.free.id and item["author"]["id"] == people.priv.id
    assert item["reports_on_message"] == 1 and item["message_state"] == "visible"


async def test_only_people_who_can_see_a_message_can_report_it(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "hello")).json()

    r = await report(client, people.free2, msg["id"])  # not in the conversation
    assert r.status_code == 404 and r.json()["error"]["code"] == "message_not_found"
    r = await report(client, people.priv, msg["id"])  # one's own message
    assert r.status_code == 403 and r.json()["error"]["code"] == "cannot_report_own_message"
    r = await report(client, people.free, msg["id"], "not-a-reason")
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = await report(client, people.free, 999_999)
    assert r.status_code == 404


async def test_the_copy_survives_the_author_deleting_the_message(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "evidence")).json()
    await report(client, people.free, msg["id"], "spam")
    r = await client.delete(f"{API}/messages/{msg['id']}", headers=people.priv.headers)
    assert r.status_code == 204

    item = (await queue(client, people.manager)).json()[0]
    assert item["body"] == "evidence" and item["message_state"] == "deleted"


async def test_managers_see_their_own_communitys_reports_only(client, people):
    mine = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, mine["id"], "store quarrel")).json()
    ours = (await report(client, people.free, msg["id"])).json()

    # a conversation inside the other community: the admin joins it and talks to the outsider
    communities = (await client.get(f"{API}/communities", headers=people.admin.headers)).json()
    riverside = next(c["id"] for c in communities if c["slug"] == "riverside")
    r = await client.post(
        f"{API}/communities/{riverside}/members",
        json={"user_ids": [people.admin.id]},
        headers=people.admin.headers,
    )
    assert r.status_code == 200, r.text
    theirs = await dm(client, people.admin, people.outsider)
    other = (await send(client, people.outsider, theirs["id"], "riverside quarrel")).json()
    elsewhere = (await report(client, people.admin, other["id"])).json()

    assert [i["id"] for i in (await queue(client, people.manager)).json()] == [ours["id"]]
    assert {i["id"] for i in (await queue(client, people.admin)).json()} == {
        ours["id"],
        elsewhere["id"],
    }
    r = await client.post(
        f"{API}/admin/reports/{elsewhere['id']}/resolve",
        json={"action": "dismiss"},
        headers=people.manager.headers,
    )
    assert r.status_code == 404
    r = await queue(client, people.priv)
    assert r.status_code == 403


async def test_dismiss_resolves_every_report_on_the_message_and_is_audited(client, people):
    group = await client.post(
        f"{API}/groups",
        headers=people.priv.headers,
        json={"title": "Book club", "member_ids": [people.free.id, people.free2.id]},
    )
    gid = group.json()["id"]
    msg = (await send(client, people.priv, gid, "spoilers!")).json()
    a = (await report(client, people.free, msg["id"], "spam")).json()
    b = (await report(client, people.free2, msg["id"], "other")).json()
    assert (await queue(client, people.admin)).json()[0]["reports_on_message"] == 2

    r = await client.post(
        f"{API}/admin/reports/{a['id']}/resolve",
        json={"action": "dismiss", "note": "fine"},
        headers=people.manager.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "resolved" and r.json()["action"] == "dismiss"
    assert (await queue(client, people.admin)).json() == []
    resolved = (await queue(client, people.admin, status="resolved")).json()
    assert {i["id"] for i in resolved} == {a["id"], b["id"]}

    r = await client.post(
        f"{API}/admin/reports/{b['id']}/resolve",
        json={"action": "dismiss"},
        headers=people.admin.headers,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "report_resolved"

    entries = await audit(client, people, "report.resolved")
    assert len(entries) == 1
    assert entries[0]["actor_id"] == people.manager.id
    assert entries[0]["data"]["action"] == "dismiss"
    assert sorted(entries[0]["data"]["reports"]) == sorted([a["id"], b["id"]])
    # the message is untouched
    r = await client.get(f"{API}/conversations/{gid}/messages", headers=people.free.headers)
    assert [m["body"] for m in r.json()] == ["spoilers!"]


async def test_delete_message_removes_it_for_everyone(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "nasty")).json()
    rep = (await report(client, people.free, msg["id"])).json()

    r = await client.post(
        f"{API}/admin/reports/{rep['id']}/resolve",
        json={"action": "delete_message"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    assert r.json()["message_state"] == "deleted" and r.json()["body"] == "nasty"
    for who in (people.priv, people.free):
        r = await client.get(f"{API}/conversations/{conv['id']}/messages", headers=who.headers)
        [m] = r.json()
        assert m["deleted"] is True and m["body"] == ""
    assert (await audit(client, people, "report.resolved"))[0]["data"]["action"] == (
        "delete_message"
    )


async def test_suspend_author_locks_them_out_but_keeps_their_messages(client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "threat")).json()
    rep = (await report(client, people.free, msg["id"], "violence")).json()

    r = await client.post(
        f"{API}/admin/reports/{rep['id']}/resolve",
        json={"action": "suspend_author", "until": "2999-01-01T00:00:00Z"},
        headers=people.manager.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["author"]["suspended_until"].startswith("2999-01-01")

    r = await send(client, people.priv, conv["id"], "still here?")
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    r = await client.post(
        f"{API}/auth/login", json={"login": "priv", "password": "correct horse battery"}
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "account_suspended"
    r = await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers)
    assert [m["body"] for m in r.json()] == ["threat"]

    [entry] = await audit(client, people, "user.suspended")
    assert entry["target_id"] == people.priv.id and entry["data"]["report_id"] == rep["id"]


async def test_managers_cannot_suspend_staff(client, people):
    conv = await dm(client, people.admin, people.free)
    msg = (await send(client, people.admin, conv["id"], "admin says")).json()
    rep = (await report(client, people.free, msg["id"])).json()
    r = await client.post(
        f"{API}/admin/reports/{rep['id']}/resolve",
        json={"action": "suspend_author"},
        headers=people.manager.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    assert (await queue(client, people.admin)).json()[0]["status"] == "open"


async def test_the_audit_log_pages_and_filters(client, people):
    for n in range(3):
        r = await client.post(
            f"{API}/admin/users/{people.free.id}/suspend",
            json={"reason": f"round {n}"},
            headers=people.admin.headers,
        )
        assert r.status_code == 200
        r = await client.delete(
            f"{API}/admin/users/{people.free.id}/suspend", headers=people.admin.headers
        )
    seen: list[int] = []
    params: dict[str, object] = {"action": "user.suspended", "limit": 2}
    while True:
        r = await client.get(f"{API}/admin/audit", params=params, headers=people.admin.headers)
        seen += [e["id"] for e in r.json()]
        assert all(e["action"] == "user.suspended" for e in r.json())
        if "X-Next-Before-Id" not in r.headers:
            break
        params["before_id"] = r.headers["X-Next-Before-Id"]
    assert len(seen) == 3 and seen == sorted(seen, reverse=True)
    r = await client.get(
        f"{API}/admin/audit", params={"actor_id": people.manager.id}, headers=people.admin.headers
    )
    assert r.json() == []
    r = await client.get(f"{API}/admin/audit", headers=people.manager.headers)
    assert r.status_code == 403


async def test_a_person_is_reported_beside_the_messages(client, people):
    r = await client.post(
        f"{API}/users/{people.priv.id}/report",
        json={"reason": "harassment", "details": "keeps messaging me"},
        headers=people.free.headers,
    )
    assert r.status_code == 201 and r.json()["message_id"] is None
    again = await client.post(
        f"{API}/users/{people.priv.id}/report",
        json={"reason": "spam", "details": "and spam"},
        headers=people.free.headers,
    )
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]  # merged
    for who, code in ((people.free, "cannot_report_yourself"), (people.outsider, "user_not_found")):
        target = people.free if who is people.free else people.priv
        bad = await client.post(
            f"{API}/users/{target.id}/report", json={"reason": "spam"}, headers=who.headers
        )
        assert bad.json()["error"]["code"] == code

    [item] = (await queue(client, people.admin)).json()
    assert item["message_state"] == "person" and item["author"]["id"] == people.priv.id
    assert item["reason"] == "spam" and item["details"] == "keeps messaging me\nand spam"
    r = await client.post(
        f"{API}/admin/reports/{item['id']}/resolve",
        json={"action": "delete_message"},
        headers=people.admin.headers,
    )
    assert r.status_code == 422  # no message to delete
    r = await client.post(
        f"{API}/admin/reports/{item['id']}/resolve",
        json={"action": "suspend_author"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200 and r.json()["action"] == "suspend_author"
    me = await client.get(f"{API}/auth/me", headers=people.priv.headers)
    assert me.status_code == 403  # suspended
