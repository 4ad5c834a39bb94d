"""PostgreSQL sends at once (`send_tx.InTransaction._at_once`), where they cannot.

A send is written by one statement that commits by itself, and only when every turn it needs
is free and its members are as it read them. Otherwise it gives its place in the message
stream back and is sent in a transaction that waits for its turns: it holds no place while it
waits (a held place holds back every process's deliveries), and it counts whoever the members
are by then.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import text

from pigeon.core import metrics
from pigeon.messaging.send_tx import _PERSON_LOCKS
from tests.support.people import dm, group, send

API = "/api/v1"


def in_transaction() -> float:
    return metrics.sends_in_transaction._value.get()  # type: ignore[attr-defined]


@pytest.fixture
def settings(settings, backend):  # type: ignore[no-untyped-def]
    if backend != "postgres":
        pytest.skip("on SQLite one writer thread writes every send")
    return settings


@pytest.mark.parametrize("turn", ["conversation", "recipient"])
async def test_a_send_that_must_wait_for_its_turn_waits_without_holding_back_others(
    app, client, people, server, turn
) -> None:
    rt = app.state.runtime
    conv = await dm(client, people.priv, people.plus)
    other = await dm(client, people.manager, people.free)
    plus = await server.connect(people.plus)
    free = await server.connect(people.free)
    take = {
        "conversation": "SELECT id FROM conversation WHERE id = :x FOR UPDATE",
        "recipient": f"SELECT pg_advisory_xact_lock({_PERSON_LOCKS}, :x)",
    }[turn]
    before = in_transaction()
    async with rt.dbs.messaging.write_engine.connect() as holder:
        held = conv["id"] if turn == "conversation" else people.plus.id
        await holder.execute(text(take), {"x": held})
        waiting = asyncio.ensure_future(send(client, people.priv, conv["id"], "after my turn"))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        assert rt.stream.upto() is None  # it holds no place while it waits
        meanwhile = await send(client, people.manager, other["id"], "not held back")
        assert meanwhile.status_code == 201
        assert (await free.next("message.new"))["data"]["body"] == "not held back"
        await holder.rollback()
    answer = await asyncio.wait_for(waiting, 5)
    assert answer.status_code == 201, answer.text
    got = await plus.next("message.new")
    assert got["data"]["body"] == "after my turn" and got["id"] == answer.json()["id"]
    assert (await plus.next("unread"))["data"]["total"] == 1
    assert in_transaction() == before + 1  # the other send was written at once


async def test_someone_added_while_a_message_is_on_its_way_is_counted_and_told(
    app, client, people, server, monkeypatch
) -> None:
    """The members change between the send's read and its write: the write finds out, and the
    send is made again against the members as they are, the newcomer counted and told."""
    rt = app.state.runtime
    gid = await group(client, people.priv, people.plus)
    newcomer = await server.connect(people.manager)
    reserve = rt.stream.reserve
    added: list[int] = []

    async def reserve_after_an_add() -> Any:
        if not added:
            r = await client.post(
                f"{API}/groups/{gid}/members",
                json={"user_ids": [people.manager.id]},
                headers=people.priv.headers,
            )
            assert r.status_code == 200, r.text
            added.append(people.manager.id)
        return await reserve()

    monkeypatch.setattr(rt.stream, "reserve", reserve_after_an_add)
    answer = await send(client, people.priv, gid, "welcome")
    assert answer.status_code == 201, answer.text
    assert added
    got = await newcomer.next("message.new")
    assert got["data"]["body"] == "welcome"
    assert (await newcomer.next("unread"))["data"]["total"] == 1
    listed = await client.get(f"{API}/conversations", headers=people.manager.headers)
    [theirs] = [c for c in listed.json() if c["id"] == gid]
    assert theirs["unread_count"] == 1


async def test_a_send_that_reaches_its_write_too_late_writes_nothing_under_its_place(
    app, client, people, monkeypatch
) -> None:
    """A place is leased: one held for half its lease may be dropped before the send commits,
    and a message committed under a dropped place could be skipped on resume. The send at
    once checks the time left before its write and as its write runs; out of time, it writes
    nothing, and the send is made again under a new place."""
    rt = app.state.runtime
    conv = await dm(client, people.priv, people.plus)
    reserve = rt.stream.reserve
    tickets: list[Any] = []

    async def reserve_nearly_spent() -> Any:
        ticket = await reserve()
        if not tickets:  # as if the process had stalled for nearly half the lease
            ticket.reserved_at -= ticket.lease / 2 - 1e-6
        tickets.append(ticket)
        return ticket

    monkeypatch.setattr(rt.stream, "reserve", reserve_nearly_spent)
    before = in_transaction()
    answer = await send(client, people.priv, conv["id"], "late")
    assert answer.status_code == 201, answer.text
    assert len(tickets) == 2 and in_transaction() == before + 1
    assert tickets[1].message_id == answer.json()["id"]  # written under the second place
    listed = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.plus.headers
    )
    assert [m["body"] for m in listed.json()] == ["late"]


async def test_members_remembered_from_an_earlier_send_are_found_out_of_date(
    client, people, server
) -> None:
    """The process remembers a conversation's members from its last send to it. Someone
    added since can send at once though the remembered members lack them (a send is refused
    only on members just read); someone who left since is not told."""
    gid = await group(client, people.priv, people.plus)
    assert (await send(client, people.priv, gid, "before")).status_code == 201
    r = await client.post(
        f"{API}/groups/{gid}/members",
        json={"user_ids": [people.manager.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 200, r.text
    plus = await server.connect(people.plus)
    theirs = await send(client, people.manager, gid, "hello all")
    assert theirs.status_code == 201, theirs.text
    assert (await plus.next("message.new"))["data"]["body"] == "hello all"

    left = await client.delete(
        f"{API}/groups/{gid}/members/{people.plus.id}", headers=people.plus.headers
    )
    assert left.status_code == 204, left.text
    newcomer = await server.connect(people.manager)
    answer = await send(client, people.priv, gid, "after they left")
    assert answer.status_code == 201, answer.text
    assert (await newcomer.next("message.new"))["data"]["body"] == "after they left"
    assert [f for f in await plus.drain() if f["type"] == "message.new"] == []
    listed = await client.get(f"{API}/conversations/{gid}/messages", headers=people.manager.headers)
    assert [m["body"] for m in listed.json()] == ["before", "hello all", "after they left"]


def test_the_members_remembered_stay_within_their_bound() -> None:
    """A process remembers at most `size` members over all conversations; those least
    recently sent to go first, and a conversation bigger than the bound is not kept."""
    from types import SimpleNamespace

    from pigeon.messaging.send_tx import Members

    def rows(*ids: int) -> list[Any]:
        return [SimpleNamespace(kind="group", user_id=u, request_pending=False) for u in ids]

    members = Members(size=5)
    members.learn(1, rows(1, 2, 3))
    members.learn(2, rows(1, 4))
    assert len(members) == 5
    assert members.get(1) is not None  # sent to again: now the most recent
    members.learn(3, rows(5, 6))
    assert members.get(2) is None and members.get(1) is not None and len(members) == 5
    members.learn(1, rows(1, 2))  # read again, smaller
    assert len(members) == 4
    assert [m.user_id for m in members.learn(4, rows(*range(10, 16)))] == list(range(10, 16))
    assert members.get(4) is None and len(members) == 4
    members.forget(3)
    assert len(members) == 2 and members.get(3) is None
