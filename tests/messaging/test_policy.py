"""Every messaging rule, walked as a table through the HTTP interface.

Each row: who acts, against whom, in which state, and the status and code a client must see.
"""

import pytest

from tests.support.people import dm, send

API = "/api/v1"


async def start(client, who, other, kind="direct", title=None):
    body = {"participant_ids": [other.id], "kind": kind}
    if title:
        body["title"] = title
    return await client.post(f"{API}/conversations", json=body, headers=who.headers)


async def switch(client, people, enabled):
    r = await client.put(
        f"{API}/admin/settings/messaging", json={"enabled": enabled}, headers=people.admin.headers
    )
    assert r.status_code == 200 and r.json()["enabled"] is enabled


async def block(client, blocker, blocked):
    r = await client.post(f"{API}/blocks", json={"user_id": blocked.id}, headers=blocker.headers)
    assert r.status_code == 201


# (starter, other, setup, status, code)
START_RULES = [
    # rule 2: who may start
    ("priv", "free", None, 201, None),
    ("plus", "free", None, 201, None),
    ("manager", "free", None, 201, None),
    ("admin", "free", None, 201, None),
    ("free", "priv", None, 403, "initiation_not_allowed"),
    ("free", "free2", None, 403, "initiation_not_allowed"),
    # rule 3: community boundary, for everyone; someone outside is answered like nobody
    ("priv", "outsider", None, 404, "user_not_found"),
    ("outsider", "priv", None, 404, "user_not_found"),
    ("admin", "outsider", None, 201, None),  # the admin also belongs to... see setup below
    # rule 4: blocks, both directions
    ("priv", "free", "free blocks priv", 403, "blocked"),
    ("priv", "free", "priv blocks free", 403, "blocked"),
    # rule 1: the switch
    ("priv", "free", "messaging off", 403, "messaging_disabled"),
    # suspended accounts never act
    ("priv", "free", "priv suspended", 403, "account_suspended"),
]


@pytest.mark.parametrize("starter,other,setup,status,code", START_RULES)
async def test_start_rules(client, people, app, starter, other, setup, status, code, clock):
    if starter == "admin" and other == "outsider":
        # an admin who is a member of the second community may start with its members
        r = await client.post(
            f"{API}/communities/2/members",
            json={"user_ids": [people.admin.id]},
            headers=people.admin.headers,
        )
        assert r.status_code == 200
    if setup == "free blocks priv":
        await block(client, people.free, people.priv)
    elif setup == "priv blocks free":
        await block(client, people.priv, people.free)
    elif setup == "messaging off":
        await switch(client, people, False)
    elif setup == "priv suspended":
        import datetime as dt

        from pigeon.accounts import service as accounts

        async with app.state.runtime.uow_scope() as uow:
            user = await accounts.get_user(uow.app, people.priv.id)
            await accounts.set_tier_role(
                uow, user, suspended_until=clock.now() + dt.timedelta(days=1)
            )
    r = await start(client, people[starter], people[other])
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"]["code"] == code
        assert r.json()["error"]["message"]


async def test_free_member_replies_in_a_conversation_started_with_them(client, people):
    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.free, conv["id"], "thanks!")
    assert r.status_code == 201
    # asking to "start" the existing one returns it: nothing new is started
    r = await start(client, people.free, people.priv)
    assert r.status_code == 200 and r.json()["id"] == conv["id"]
    # the alias works for replies too
    r = await client.post(
        f"{API}/messages/send",
        json={"recipient_id": people.priv.id, "body": "again"},
        headers=people.free.headers,
    )
    assert r.status_code == 201 and r.json()["conversation_id"] == conv["id"]
    # but not to someone new
    r = await client.post(
        f"{API}/messages/send",
        json={"recipient_id": people.plus.id, "body": "hi"},
        headers=people.free.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "initiation_not_allowed"


async def test_block_stops_direct_messages_both_ways(client, people):
    conv = await dm(client, people.priv, people.free)
    await block(client, people.free, people.priv)
    for who in (people.priv, people.free):
        r = await send(client, who, conv["id"], "still there?")
        assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    r = await client.delete(f"{API}/blocks/{people.priv.id}", headers=people.free.headers)
    assert r.status_code == 204
    assert (await send(client, people.priv, conv["id"], "hello again")).status_code == 201


async def test_switch_blocks_every_messaging_call_and_deletes_nothing(client, people):
    conv = await dm(client, people.priv, people.free)
    assert (await send(client, people.priv, conv["id"], "kept")).status_code == 201
    await switch(client, people, False)
    calls = [
        ("GET", f"{API}/conversations", None),
        ("GET", f"{API}/conversations/{conv['id']}", None),
        ("GET", f"{API}/conversations/{conv['id']}/messages", None),
        ("POST", f"{API}/conversations/{conv['id']}/messages", {"body": "x"}),
        ("GET", f"{API}/unread", None),
        ("POST", f"{API}/messages/send", {"recipient_id": people.free.id, "body": "x"}),
        ("GET", f"{API}/groups", None),
    ]
    for method, url, body in calls:
        r = await client.request(method, url, json=body, headers=people.priv.headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "messaging_disabled", url
    await switch(client, people, True)
    r = await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers)
    assert [m["body"] for m in r.json()] == ["kept"]


@pytest.mark.parametrize(
    "body,ok",
    [
        ("hello", True),
        ("  padded  ", True),
        ("é" * 4000, True),
        ("x" * 4001, False),
        ("", False),
        ("   \n\t ", False),
        ("bell\x07", False),
        ("rtl \u202e override", False),
        ("line one\nline two", True),
        ("emoji 🐦 and ünïcödé", True),
    ],
)
async def test_content_rules(client, people, body, ok):
    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.priv, conv["id"], body)
    if ok:
        assert r.status_code == 201, r.text
        assert r.json()["body"] == body.strip()
    else:
        assert r.status_code == 422
        assert r.json()["error"]["code"] == "validation_error"
        assert "body" in r.json()["error"]["fields"]


async def test_bodies_are_unicode_normalized(client, people):
    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.priv, conv["id"], "cafe\u0301")  # e + combining acute
    assert r.json()["body"] == "caf\u00e9"


async def test_group_members_must_share_a_community_and_not_block(client, people):
    r = await client.post(
        f"{API}/conversations",
        json={
            "participant_ids": [people.free.id, people.outsider.id],
            "kind": "group",
            "title": "Mixed",
        },
        headers=people.priv.headers,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    r = await client.post(
        f"{API}/groups",
        json={"title": "Club", "member_ids": [people.free.id]},
        headers=people.priv.headers,
    )
    group = r.json()["id"]
    r = await client.post(
        f"{API}/groups/{group}/members",
        json={"user_ids": [people.outsider.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    await block(client, people.plus, people.priv)
    r = await client.post(
        f"{API}/groups/{group}/members",
        json={"user_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    r = await client.post(
        f"{API}/groups",
        json={"title": "Club", "member_ids": [people.free.id]},
        headers=people.free.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "initiation_not_allowed"


def test_policy_functions_directly():
    """The same rules, as plain functions over plain facts."""
    from pigeon.accounts.service import Principal
    from pigeon.core.errors import AppError
    from pigeon.messaging import policy

    def person(pid, tier="free", role="member", communities=(1,)):
        return Principal(pid, f"u{pid}", f"U{pid}", tier, role, True, None, frozenset(communities))

    def code(fn, *args):
        try:
            fn(*args)
        except AppError as exc:
            return exc.code
        return None

    assert code(policy.check_enabled, False) == "messaging_disabled"
    assert code(policy.check_enabled, True) is None
    assert code(policy.check_can_start, person(1)) == "initiation_not_allowed"
    assert code(policy.check_can_start, person(1, tier="privileged")) is None
    assert code(policy.check_can_start, person(1, role="owner")) is None
    assert (
        code(policy.check_same_community, person(1), [person(2, communities=(2,))])
        == "outside_community"
    )
    assert (
        code(
            policy.check_same_community,
            person(1, communities=(1, 2)),
            [person(2, communities=(2,))],
        )
        is None
    )
    assert not policy.visible_to(person(1), person(2, communities=(2,)))
    assert policy.visible_to(person(1, communities=(1, 2)), person(2, communities=(2,)))
    assert code(policy.check_not_blocked, 1, [2], {(2, 1)}) == "blocked"
    assert code(policy.check_not_blocked, 1, [2], {(1, 2)}) == "blocked"
    assert code(policy.check_not_blocked, 1, [2], {(3, 1)}) is None
