"""Cached people and blocks: another process's change applies as soon as it is announced."""

from typing import Any

from sqlalchemy import event, update

from pigeon.accounts import directory
from pigeon.accounts.models import Block, User
from pigeon.core import events
from tests.support.garbage import left_in_cycles
from tests.support.people import dm, send


async def announce(app: Any, message: Any) -> None:
    """What another process's change sends on the control channel."""
    await app.state.runtime.publisher.controls([message])


async def test_an_announced_change_applies_at_once(client, app, people):
    r = await client.post(
        "/api/v1/conversations",
        json={"participant_ids": [people.free2.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 201  # priv is cached as privileged now
    # another process demotes priv (straight in the database) and announces it
    async with app.state.runtime.dbs.app.write() as session:
        await session.execute(update(User).where(User.id == people.priv.id).values(tier="free"))
    r = await client.post(
        "/api/v1/conversations",
        json={"participant_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 201  # not announced yet: the cached principal still stands
    await announce(app, events.PeopleChanged(user_ids=[people.priv.id]))
    r = await client.post(
        "/api/v1/conversations",
        json={"participant_ids": [people.manager.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "initiation_not_allowed"


async def test_an_announced_block_applies_at_once_and_silence_heals_in_ten_seconds(
    client, app, people, clock
):
    import datetime as dt

    conv = await dm(client, people.priv, people.free)
    assert (await send(client, people.priv, conv["id"], "hi")).status_code == 201
    async with (
        app.state.runtime.dbs.app.write() as session
    ):  # free blocks priv, from another process
        session.add(
            Block(blocker_id=people.free.id, blocked_id=people.priv.id, created_at=clock.now())
        )
    await announce(app, events.BlocksChanged(user_ids=[people.free.id, people.priv.id]))
    r = await send(client, people.priv, conv["id"], "still?")
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    # an unblock whose announcement was lost still applies once the cache expires
    async with app.state.runtime.dbs.app.write() as session:
        from sqlalchemy import delete

        await session.execute(delete(Block))
    clock.advance(dt.timedelta(seconds=10.5))
    assert (await send(client, people.priv, conv["id"], "back")).status_code == 201


async def test_whoever_is_in_use_is_read_afresh_before_their_belief_lapses(
    client, app, people, clock, renewal_by_hand
):
    """A person asked about in the last quarter of what the process believes of them is read
    again by the renewal job: a change nobody announced is seen then, and their belief never
    lapses, so no request of theirs waits on a read of who they are."""
    import datetime as dt

    from pigeon.auth import renewal

    rt = app.state.runtime
    conv = await dm(client, people.priv, people.free)
    assert (await send(client, people.priv, conv["id"], "hi")).status_code == 201
    # another process, whose announcements are lost: priv is demoted and free blocks priv
    async with rt.dbs.app.write() as session:
        await session.execute(update(User).where(User.id == people.priv.id).values(tier="free"))
        session.add(
            Block(blocker_id=people.free.id, blocked_id=people.priv.id, created_at=clock.now())
        )
    clock.advance(dt.timedelta(seconds=rt.people.seconds * 0.8))
    # still believed, and being asked about in its last quarter makes it due
    assert (await send(client, people.priv, conv["id"], "still?")).status_code == 201
    assert await renewal.renew(rt) >= 2  # priv's principal and edges, at least
    r = await send(client, people.priv, conv["id"], "now?")
    assert r.status_code == 403 and r.json()["error"]["code"] == "blocked"
    r = await client.post(
        "/api/v1/conversations",
        json={"participant_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "initiation_not_allowed"
    # past the first read's lapse, the renewed belief stands: no read on the request's path
    clock.advance(dt.timedelta(seconds=rt.people.seconds * 0.5))
    assert rt.people.principals.get(people.priv.id) is not None
    assert rt.people.edges.get(people.priv.id) is not None


async def test_someone_who_acts_every_few_seconds_is_renewed_though_never_asked_late(
    client, app, people, clock, renewal_by_hand
):
    """Someone who sends every six seconds (of a ten-second belief) is asked about in the
    middle of their belief, never in its last quarter: they are in use all the same, so the
    renewal reads them before the belief lapses and their next send waits on no read. Someone
    nobody asked about since their read is left to lapse."""
    import datetime as dt

    from pigeon.auth import renewal

    rt = app.state.runtime
    life = rt.people.seconds
    conv = await dm(client, people.priv, people.free)
    assert (await send(client, people.priv, conv["id"], "hi")).status_code == 201
    assert rt.people.principals.get(people.plus.id) is None
    await directory.principals(rt, {people.plus.id})  # read once, then never asked about
    clock.advance(dt.timedelta(seconds=life * 0.6))
    assert (await send(client, people.priv, conv["id"], "six seconds on")).status_code == 201
    assert await renewal.renew(rt) == 0  # nobody is in the last quarter of their belief yet
    clock.advance(dt.timedelta(seconds=life * 0.2))
    assert await renewal.renew(rt) >= 2  # priv's principal and edges, at least
    clock.advance(dt.timedelta(seconds=life * 0.3))  # past the first read's lapse
    assert rt.people.principals.get(people.priv.id) is not None
    assert rt.people.edges.get(people.priv.id) is not None
    assert rt.people.principals.get(people.plus.id) is None


def test_a_read_that_an_announcement_overtook_is_not_believed(clock):
    """A read begun before a change was announced may have missed the change: believing it
    would undo the announcement for as long as the belief lasts."""
    from pigeon.core.people import Beliefs

    beliefs: Beliefs[int, str] = Beliefs(clock, 10.0)
    mark = beliefs.mark()
    beliefs.forget([1])  # announced while the read was under way
    beliefs.keep([(1, "as read")], mark)
    assert beliefs.get(1) is None
    beliefs.keep([(1, "read again")], beliefs.mark())
    assert beliefs.get(1) == "read again"


async def test_the_renewal_leaves_nothing_for_the_cycle_collector(
    client, app, people, clock, renewal_by_hand
):
    """The renewal reads people all day long: what each read builds is freed as soon as it is
    done with, not left in reference cycles that pile up (and hold memory) until the next
    collection."""
    import datetime as dt

    from pigeon.auth import renewal

    rt = app.state.runtime
    conv = await dm(client, people.priv, people.free)
    assert (await send(client, people.priv, conv["id"], "hi")).status_code == 201
    signins = list(rt.people.signins._kept)  # the sign-ins the two sends came through
    in_use = [people.priv.id, people.free.id]
    renewed: list[int] = []

    async def renew_all() -> None:
        clock.advance(dt.timedelta(seconds=rt.people.seconds * 0.8))
        for user_id in in_use:  # asked about in their beliefs' last quarter: due
            assert rt.people.principals.get(user_id) is not None
            assert rt.people.edges.get(user_id) is not None
        for family in signins:
            assert rt.people.signins.get(family)
        renewed.append(await renewal.renew(rt))

    assert await left_in_cycles(renew_all) == []
    assert renewed == [2 * len(in_use) + len(signins)] * 21


async def test_someone_not_yet_known_is_read_before_the_send_holds_back_the_stream(
    client, app, people, monkeypatch
):
    """A send to someone this process has not read yet (a cold cache after a start) reads
    them first, then sends. On PostgreSQL the send must not hold its place in the message
    stream meanwhile: a held place holds back every process's deliveries."""
    from pigeon.messaging import sending

    rt = app.state.runtime
    conv = await dm(client, people.priv, people.free)
    rt.people.principals.forget([people.free.id])
    read: list[tuple[set[int], int | None]] = []
    real = directory.principals

    async def principals(rt_: Any, ids: Any) -> Any:
        read.append((set(ids), rt_.stream.upto()))  # upto: None while no place is held
        return await real(rt_, ids)

    monkeypatch.setattr(sending.directory, "principals", principals)
    turns: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "pg_advisory_xact_lock(" in statement or "pigeon_send_at_once(" in statement:
            turns.append(statement)  # in a transaction, or at once

    engine = rt.dbs.messaging.write_engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        r = await send(client, people.priv, conv["id"], "are you there?")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert r.status_code == 201
    assert [(ids, upto) for ids, upto in read if people.free.id in ids] == [
        ({people.free.id}, None)
    ]
    if rt.dbs.messaging.dialect == "postgresql":
        assert len(turns) == 1  # read within its turns, not by failing and taking them again
    assert rt.people.principals.get(people.free.id) is not None
    history = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages", headers=people.free.headers
    )
    assert [m["body"] for m in history.json()] == ["are you there?"]


async def test_people_asked_for_at_once_are_read_together(app, people):
    """A process that has just started reads many people at once (the first request of each
    member through it): those asked for while a read is out are read in the next, together,
    and each asker gets exactly whom it asked for."""
    import asyncio

    rt = app.state.runtime
    db = rt.dbs.app
    engine = db.sync_reader or db.read_engine.sync_engine
    reads: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if 'FROM "user"' in statement or "FROM user" in statement:
            reads.append(statement)

    ids = [people.priv.id, people.free.id, people.free2.id, people.plus.id, people.manager.id]
    rt.people.clear()
    event.listen(engine, "before_cursor_execute", record)
    try:
        found = await asyncio.gather(*(directory.principals(rt, [uid]) for uid in ids))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert [{uid: p.id for uid, p in got.items()} for got in found] == [{uid: uid} for uid in ids]
    assert 1 <= len(reads) <= 2  # not one each
    assert all(rt.people.principals.get(uid) is not None for uid in ids)
