"""One transaction per request: changes commit together or not at all, events go out only
after the commit, and racing requests get clear answers."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
import subprocess
import time
from typing import Any

import pytest
from sqlalchemy import select, text

from pigeon.accounts import directory
from pigeon.core import metrics
from pigeon.core.events import EVENTS_CHANNEL, Envelope
from pigeon.media.receive import Received
from pigeon.messaging import attachments
from pigeon.messaging import service as messaging
from pigeon.messaging.models import Conversation
from pigeon.messaging.send_tx import GroupCommit, SendOp
from tests.media import samples
from tests.support.acting import acting_as
from tests.support.people import dm, send

API = "/api/v1"


async def test_concurrent_adds_of_the_same_member_are_one_add(client, people) -> None:
    group = await client.post(
        f"{API}/groups",
        json={"title": "Readers", "member_ids": [people.plus.id]},
        headers=people.priv.headers,
    )
    gid = group.json()["id"]
    answers = await asyncio.gather(
        *(
            client.post(
                f"{API}/groups/{gid}/members",
                json={"user_ids": [people.free.id]},
                headers=people.priv.headers,
            )
            for _ in range(4)
        )
    )
    assert [r.status_code for r in answers] == [200, 200, 200, 200], [r.text for r in answers]
    members = [p["id"] for p in answers[-1].json()["participants"]]
    assert sorted(members) == sorted([people.priv.id, people.plus.id, people.free.id])


async def test_a_change_that_fails_halfway_leaves_nothing_and_tells_no_one(app, people) -> None:
    rt, heard = app.state.runtime, []

    async def listen(channel: str, payload: bytes) -> None:
        if channel == EVENTS_CHANNEL:
            heard.append(Envelope.decode(payload))

    rt.broker.add_listener(listen)
    with pytest.raises(RuntimeError):
        async with acting_as(rt, app.state.sends, people.priv.id) as ctx:
            await messaging.start_group(ctx, [people.free.id], "Never")
            raise RuntimeError("the request failed after the group was written")
    async with rt.dbs.messaging.read() as session:
        assert (await session.scalars(select(Conversation.title))).all() == []
    assert heard == []


async def test_a_file_stored_for_an_upload_that_never_commits_is_removed(
    app, people, tmp_path
) -> None:
    """The file is written before its row; if the row is rolled back, the file goes too."""
    rt = app.state.runtime
    media = rt.settings.media_dir
    attachments.incoming(rt.settings).mkdir(parents=True, exist_ok=True)
    photo = tmp_path / "photo.png"
    photo.write_bytes(samples.png())
    received = Received(photo, "photo.png", photo.stat().st_size)
    with pytest.raises(RuntimeError):
        async with acting_as(rt, app.state.sends, people.priv.id) as ctx:
            await attachments.upload(ctx, received)
            assert len([f for f in media.rglob("*") if f.is_file()]) == 2  # and its thumbnail
            raise RuntimeError("the send after the upload was refused")
    assert [f for f in media.rglob("*") if f.is_file()] == []
    async with acting_as(rt, app.state.sends, people.priv.id) as ctx:
        await attachments.upload(ctx, received)
    assert len([f for f in media.rglob("*") if f.is_file()]) == 2


async def test_a_batch_of_valid_and_refused_sends_commits_the_valid_ones(
    app, client, people, backend, clock
) -> None:
    """Each send gets its own answer, whatever else shares its transaction."""
    direct = await dm(client, people.priv, people.free)
    blocked = await dm(client, people.priv, people.free2)
    first = (await send(client, people.priv, direct["id"], "first")).json()
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free2.headers
    )
    assert r.status_code == 201
    other = await dm(client, people.plus, people.free)
    rt, sends = app.state.runtime, app.state.sends
    edges = frozenset({(people.free2.id, people.priv.id)})

    everyone = await directory.principals(rt, [p.id for p in people.values()])

    def op(conversation_id: int, body: str, **kw: Any) -> SendOp:
        return SendOp(
            conversation_id=conversation_id,
            sender=everyone[people.priv.id],
            body=body,
            client_msg_id=kw.pop("client_msg_id", None),
            reply_to_id=kw.pop("reply_to_id", None),
            now=clock.now(),
            edges=edges,
            known=everyone.get,
            read_people=lambda user_ids: directory.principals(rt, user_ids),
        )

    ops = [
        op(direct["id"], "valid one", client_msg_id="batch-1"),
        op(other["id"], "not my conversation"),
        op(blocked["id"], "across a block"),
        op(direct["id"], "reply elsewhere", reply_to_id=10**12),
        op(direct["id"], "valid two", reply_to_id=first["id"]),
        op(direct["id"], "valid one again", client_msg_id="batch-1"),
    ]
    expected = [None, "conversation_not_found", "blocked", "validation_error", None, None]

    async def run_all() -> list[Any]:
        async with rt.uow_scope() as uow:
            return await asyncio.gather(*(sends.run(uow, o) for o in ops), return_exceptions=True)

    if isinstance(sends, GroupCommit):
        # hold the write lock so the sends queue up and commit as one batch
        hold = sqlite3.connect(str(sends.db.path), isolation_level=None)
        hold.execute("BEGIN IMMEDIATE")
        task = asyncio.ensure_future(run_all())
        await asyncio.sleep(0.3)
        hold.execute("COMMIT")
        hold.close()
        outcomes = await task
    else:
        outcomes = []
        for o in ops:  # on PostgreSQL each send runs in its request's own transaction
            async with rt.uow_scope() as uow:
                try:
                    outcomes.append(await sends.run(uow, o))
                except Exception as exc:
                    outcomes.append(exc)
    codes = [getattr(o, "code", None) for o in outcomes]
    assert codes == expected
    assert [o.created for o in (outcomes[0], outcomes[4], outcomes[5])] == [True, True, False]
    assert outcomes[5].row.id == outcomes[0].row.id
    history = await client.get(
        f"{API}/conversations/{direct['id']}/messages", headers=people.free.headers
    )
    assert [m["body"] for m in history.json()] == ["first", "valid one", "valid two"]
    listed = await client.get(f"{API}/unread", headers=people.free.headers)
    assert listed.json()["conversations"][str(direct["id"])] == 3
    del backend


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def doomed_redis():  # type: ignore[no-untyped-def]
    """A Redis server of this test's own, which the test stops while the app uses it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    yield proc, f"redis://127.0.0.1:{port}/0"
    proc.kill()
    proc.wait()


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    if "doomed_redis" in request.fixturenames:
        _, url = request.getfixturevalue("doomed_redis")
        return settings.model_copy(update={"redis_url": url})
    return settings


async def test_a_send_is_acknowledged_when_the_broker_fails_after_the_commit(
    doomed_redis, app, client, people
) -> None:
    proc, _ = doomed_redis
    conv = await dm(client, people.priv, people.free)
    proc.kill()
    proc.wait()
    failures = metrics.publish_failures._value.get()
    r = await send(client, people.priv, conv["id"], "the broker is gone", client_msg_id="c-1")
    assert r.status_code == 201, r.text
    assert metrics.publish_failures._value.get() > failures
    history = await client.get(
        f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers
    )
    assert [m["body"] for m in history.json()] == ["the broker is gone"]
    again = await send(client, people.priv, conv["id"], "the broker is gone", client_msg_id="c-1")
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"]
    async with app.state.runtime.dbs.messaging.read() as session:
        assert (await session.execute(text("SELECT count(*) FROM message"))).scalar() == 1


def test_sqlite_out_of_patience_counts_as_contention_and_a_broken_rule_does_not(
    tmp_path,
) -> None:  # type: ignore[no-untyped-def]
    """What the unit of work answers `try_again` for on SQLite: another writer holding the
    database past the busy timeout. A broken constraint is the request's fault, not contention."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import IntegrityError, OperationalError

    from pigeon.core.uow import contended

    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    holder.execute("INSERT INTO t VALUES (1)")
    holder.execute("BEGIN IMMEDIATE")
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0})
    try:
        with pytest.raises(OperationalError) as locked, engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
        assert contended(locked.value)
        holder.execute("ROLLBACK")
        with pytest.raises(IntegrityError) as broken, engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert not contended(broken.value)
    finally:
        engine.dispose()
        holder.close()
