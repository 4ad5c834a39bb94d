"""Deleting an account, as its owner and as an admin: the person's data goes, their username
and email can be taken again, their sign-ins end, their groups pass on, their messages stay
(shown as from "Deleted member") or go as an author's delete does, and reports stay for the
moderators."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient
from sqlalchemy import select

from pigeon.core.audit import AuditLog
from tests.support.people import PASSWORD, Person, dm, send

API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(client: AsyncClient, login: str) -> dict[str, Any]:
    r = await client.post(f"{API}/auth/login", json={"login": login, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()


async def delete_me(
    client: AsyncClient, who: Person, messages: str = "keep", password: str = PASSWORD
):  # type: ignore[no-untyped-def]
    return await client.request(
        "DELETE",
        f"{API}/me",
        json={"password": password, "messages": messages},
        headers=who.headers,
    )


async def admin_delete(client: AsyncClient, actor: Person, target: Person, messages: str = "keep"):  # type: ignore[no-untyped-def]
    return await client.request(
        "DELETE",
        f"{API}/admin/users/{target.id}",
        json={"messages": messages},
        headers=actor.headers,
    )


async def history(client: AsyncClient, who: Person, conv_id: int) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/conversations/{conv_id}/messages", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def audit_rows(app, action: str) -> list[AuditLog]:  # type: ignore[no-untyped-def]
    async with app.state.runtime.dbs.app.read() as session:
        return list(await session.scalars(select(AuditLog).where(AuditLog.action == action)))


async def test_a_wrong_password_deletes_nothing(client, people):
    r = await delete_me(client, people.priv, password="not it")
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_password"
    assert (await client.get(f"{API}/auth/me", headers=people.priv.headers)).status_code == 200


async def test_bad_input_gets_the_envelope(client, people):
    for body in ({"password": PASSWORD}, {"password": PASSWORD, "messages": "burn"}, {}):
        r = await client.request("DELETE", f"{API}/me", json=body, headers=people.priv.headers)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "validation_error"


async def test_kept_messages_read_as_from_a_deleted_member(app, client, people):
    conv = await dm(client, people.priv, people.plus)
    said = await send(client, people.priv, conv["id"], "see you at the reading")
    assert said.status_code == 201
    signin = await sign_in(client, "priv")

    r = await delete_me(client, people.priv, "keep")
    assert r.status_code == 204, r.text

    seen = await history(client, people.plus, conv["id"])
    assert [m["body"] for m in seen] == ["see you at the reading"]
    convo = await client.get(f"{API}/conversations/{conv['id']}", headers=people.plus.headers)
    names = {p["id"]: p["display_name"] for p in convo.json()["participants"]}
    assert names[people.priv.id] == "Deleted member"
    reply = await send(client, people.plus, conv["id"], "hello?")
    assert reply.status_code == 403  # the conversation is read-only now
    # every sign-in ended
    gone = await client.get(f"{API}/auth/me", headers=bearer(signin["access_token"]))
    assert gone.status_code == 401
    again = await client.post(
        f"{API}/auth/refresh", json={"refresh_token": signin["refresh_token"]}
    )
    assert again.status_code == 401
    login = await client.post(f"{API}/auth/login", json={"login": "priv", "password": PASSWORD})
    assert login.status_code == 401
    [entry] = await audit_rows(app, "user.deleted")
    assert (entry.actor_id, entry.target_id) == (people.priv.id, people.priv.id)
    assert entry.data == {"username": "priv", "messages": "keep"}


async def test_removed_messages_are_deleted_as_their_author_would(client, people):
    conv = await dm(client, people.priv, people.plus)
    for text in ("one", "two"):
        assert (await send(client, people.priv, conv["id"], text)).status_code == 201
    assert (await send(client, people.plus, conv["id"], "my own")).status_code == 201

    assert (await delete_me(client, people.priv, "remove")).status_code == 204

    seen = await history(client, people.plus, conv["id"])
    assert [(m["body"], m["deleted"]) for m in seen] == [("", True), ("", True), ("my own", False)]
    unread = await client.get(f"{API}/unread", headers=people.plus.headers)
    assert unread.json()["total"] == 0


async def test_leaving_groups_passes_ownership_on(client, people):
    r = await client.post(
        f"{API}/groups",
        json={"title": "Readers", "member_ids": [people.plus.id, people.free.id]},
        headers=people.priv.headers,
    )
    gid = r.json()["id"]
    assert (await send(client, people.priv, gid, "welcome")).status_code == 201

    assert (await delete_me(client, people.priv, "keep")).status_code == 204

    group = (await client.get(f"{API}/groups/{gid}", headers=people.plus.headers)).json()
    roles = {p["id"]: p["role"] for p in group["participants"]}
    assert people.priv.id not in roles
    assert roles[people.plus.id] == "owner"  # the longest-standing member who may start
    assert [m["body"] for m in await history(client, people.free, gid)] == ["welcome"]


async def test_username_and_email_can_be_registered_again(client, people):
    assert (await delete_me(client, people.priv)).status_code == 204
    r = await client.post(
        f"{API}/auth/register",
        json={"email": "priv@example.com", "username": "priv", "password": "a fresh start here"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["user"]["id"] != people.priv.id
    assert r.json()["user"]["display_name"] == "priv"


async def test_reports_about_them_stay_for_the_moderators(client, people):
    conv = await dm(client, people.priv, people.plus)
    said = (await send(client, people.priv, conv["id"], "something awful")).json()
    r = await client.post(
        f"{API}/messages/{said['id']}/report", json={"reason": "spam"}, headers=people.plus.headers
    )
    assert r.status_code == 201, r.text

    assert (await delete_me(client, people.priv, "remove")).status_code == 204

    queue = await client.get(f"{API}/admin/reports", headers=people.admin.headers)
    [item] = queue.json()
    assert item["body"] == "something awful"
    assert item["author"]["id"] == people.priv.id
    assert item["author"]["display_name"] == "Deleted member"


async def test_the_last_admin_cannot_delete_themselves(client, people):
    r = await delete_me(client, people.admin)
    assert r.status_code == 409 and r.json()["error"]["code"] == "last_admin"
    assert (await client.get(f"{API}/auth/me", headers=people.admin.headers)).status_code == 200


async def test_an_admin_deletes_someone_else(app, client, people):
    conv = await dm(client, people.priv, people.plus)
    assert (await send(client, people.priv, conv["id"], "bye")).status_code == 201
    signin = await sign_in(client, "priv")

    r = await admin_delete(client, people.admin, people.priv, "remove")
    assert r.status_code == 204, r.text

    assert [m["deleted"] for m in await history(client, people.plus, conv["id"])] == [True]
    gone = await client.get(f"{API}/auth/me", headers=bearer(signin["access_token"]))
    assert gone.status_code == 401
    again = await admin_delete(client, people.admin, people.priv)
    assert again.status_code == 404
    [entry] = await audit_rows(app, "user.deleted")
    assert (entry.actor_id, entry.target_id) == (people.admin.id, people.priv.id)
    assert entry.data["messages"] == "remove"
    listed = await client.get(f"{API}/admin/users?q=priv", headers=people.admin.headers)
    assert [u["username"] for u in listed.json()] == []


async def test_who_may_delete_whom(client, people):
    r = await admin_delete(client, people.manager, people.admin)
    assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    r = await admin_delete(client, people.manager, people.free)
    assert r.status_code == 403
    r = await admin_delete(client, people.admin, people.admin)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cannot_change_self"
    r = await client.request(
        "DELETE",
        f"{API}/admin/users/999999",
        json={"messages": "keep"},
        headers=people.admin.headers,
    )
    assert r.status_code == 404
    assert (await client.get(f"{API}/auth/me", headers=people.admin.headers)).status_code == 200


async def test_deleting_works_with_messaging_off(client, people_off):
    r = await delete_me(client, people_off.free, "remove")
    assert r.status_code == 204, r.text
