"""M6: what a client sends over the WebSocket is bounded: frames per connection, read marks
written, catch-ups running and the messages one catch-up replays. Normal use is untouched."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import event
from websockets.exceptions import ConnectionClosed

from tests.realtime import conftest as realtime
from tests.realtime.conftest import Live, besides_presence
from tests.support.people import dm, send

server = realtime.server  # the live server fixture


def new_ids(frames: list[dict[str, Any]]) -> list[int]:
    return [f["id"] for f in frames if f["type"] == "message.new"]


def errors(frames: list[dict[str, Any]]) -> list[str]:
    return [f["data"]["code"] for f in frames if f["type"] == "error"]


async def until_closed(live: Live) -> tuple[list[dict[str, Any]], int, int | None, str | None]:
    """Every frame until the server closes: (frames, bytes received, close code, reason)."""
    frames, size = [], 0
    try:
        async with asyncio.timeout(10):
            while True:
                raw = await live.ws.recv()
                size += len(raw)
                frames.append(orjson.loads(raw))
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        return frames, size, rcvd.code if rcvd else None, rcvd.reason if rcvd else None


@pytest.fixture
def participant_updates(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every read-position write on the messaging database, as it is executed."""
    engine = app.state.runtime.dbs.messaging.write_engine.sync_engine
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("UPDATE PARTICIPANT SET LAST_READ_MESSAGE_ID"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def settings(settings, request):  # type: ignore[no-untyped-def]
    return settings.model_copy(update=getattr(request, "param", {}))


# the default burst, and (almost) no refill while the test runs, however slow the machine
FLOOD = {"ws_frames_per_second": 0.001}

# --- the frame budget ---


@pytest.mark.parametrize("settings", [FLOOD], indirect=True)
async def test_a_flood_of_resumes_is_cut_off_after_one_replay(client, people, server):
    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(30)]
    live = await server.connect(people.free)
    for _ in range(100):
        await live.send(type="resume", last_message_id=0)
    frames, size, code, reason = await until_closed(live)
    assert (code, reason) == (4008, "too many frames")
    got = new_ids(frames)
    assert len(got) == len(set(got)) and set(got) <= set(ids)  # one replay at most
    assert errors(frames).count("resume_in_progress") <= 5  # while the first runs
    assert errors(frames).count("rate_limited") == 2  # "slow down", then "closing"
    assert len(frames) <= 37 and size < 20_000


@pytest.mark.parametrize("settings", [FLOOD], indirect=True)
async def test_a_flood_of_garbage_is_answered_a_little_then_closed(people, server):
    live = await server.connect(people.free)
    for _ in range(500):
        await live.ws.send("not json")
    frames, _, code, reason = await until_closed(live)
    assert (code, reason) == (4008, "too many frames")
    assert errors(frames).count("bad_frame") == 60  # the burst
    assert errors(frames).count("rate_limited") == 2  # "slow down", then "closing"
    assert len(frames) == 62


async def test_an_oversized_frame_is_refused(people, server):
    live = await server.connect(people.free)
    await live.send(type="ping", pad="x" * 5000)
    frame = await live.recv()
    assert frame["type"] == "error" and frame["data"]["code"] == "frame_too_large"
    await live.send(type="ping", pad="é" * 2100)  # over 4 KiB in bytes, not in characters
    assert (await live.recv())["data"]["code"] == "frame_too_large"
    assert await live.drain() == []  # the connection carries on


@pytest.mark.parametrize(
    "settings", [{"ws_frame_burst": 5, "ws_frames_per_second": 1}], indirect=True
)
async def test_a_client_that_pauses_gets_its_budget_back(people, server, clock):
    live = await server.connect(people.free)
    for _ in range(5):
        await live.send(type="ping")
    assert [(await live.recv())["type"] for _ in range(5)] == ["pong"] * 5
    await live.send(type="ping")
    frame = await live.recv()
    assert frame["type"] == "error" and frame["data"]["code"] == "rate_limited"
    clock.advance(dt.timedelta(seconds=10))  # the debt is paid back, the bucket full again
    for _ in range(5):
        await live.send(type="ping")
    assert [(await live.recv())["type"] for _ in range(5)] == ["pong"] * 5


# --- read marks ---


@pytest.mark.parametrize(
    "settings", [{"ws_frame_burst": 10_000, "ws_frames_per_second": 1000}], indirect=True
)
async def test_a_burst_of_reads_is_written_once_and_old_reads_cost_nothing(
    client, people, server, participant_updates
):
    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(20)]
    sender = await server.connect(people.priv)
    reader = await server.connect(people.free)
    participant_updates.clear()
    for _ in range(10):
        for message_id in ids:
            await reader.send(type="read", conversation_id=conv["id"], message_id=message_id)
    got = await reader.drain()  # a ping: the reads sent before it are written first
    assert len(participant_updates) <= 2
    unread = [f for f in got if f["type"] == "unread"]
    assert 1 <= len(unread) <= 2 and unread[-1]["data"]["count"] == 0
    receipts = [f for f in await sender.drain() if f["type"] == "receipt.read"]
    assert 1 <= len(receipts) <= 2 and receipts[-1]["data"]["message_id"] == ids[-1]

    # at or below the known position: no transaction, no event, nothing back
    participant_updates.clear()
    for message_id in ids * 5:
        await reader.send(type="read", conversation_id=conv["id"], message_id=message_id)
    assert besides_presence(await reader.drain()) == []
    assert besides_presence(await sender.drain()) == []
    assert participant_updates == []
    r = await client.get(f"/api/v1/conversations/{conv['id']}", headers=people.free.headers)
    assert r.json()["unread_count"] == 0


@pytest.mark.parametrize("settings", [{"ws_read_interval_seconds": 600}], indirect=True)
async def test_the_last_read_is_written_when_the_connection_ends(client, people, server):
    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(3)]
    sender = await server.connect(people.priv)
    reader = await server.connect(people.free)
    await reader.send(type="read", conversation_id=conv["id"], message_id=ids[0])
    first = await sender.next("receipt.read")  # the first after a quiet spell goes at once
    assert first["data"]["message_id"] == ids[0]
    await reader.send(type="read", conversation_id=conv["id"], message_id=ids[1])
    await reader.send(type="read", conversation_id=conv["id"], message_id=ids[2])
    await reader.close()  # well before the interval is over
    last = await sender.next("receipt.read")
    assert last["data"]["message_id"] == ids[2]
    assert besides_presence(await sender.drain()) == []


# --- resume ---


async def test_a_second_resume_while_one_runs_is_refused(client, people, server):
    conv = await dm(client, people.priv, people.free)
    pad = "x" * 4000  # the replay is far more than the socket buffers hold: it has to wait
    ids = [(await send(client, people.priv, conv["id"], pad)).json()["id"] for i in range(150)]
    live = await server.connect(people.free, max_queue=1)
    await live.send(type="resume", last_message_id=0, ref="first")
    await live.send(type="resume", last_message_id=0, ref="second")
    frames = await live.drain()
    assert new_ids(frames) == ids  # one replay, in order
    refused = [f["data"] for f in frames if f["type"] == "error"]
    assert refused == [
        {"code": "resume_in_progress", "message": refused[0]["message"], "ref": "second"}
    ]
    # once it is done, the next one runs (and has nothing new to give)
    await live.send(type="resume", last_message_id=0)
    assert await live.drain() == []


@pytest.mark.parametrize("settings", [{"ws_resume_max_messages": 5}], indirect=True)
async def test_a_long_catch_up_stops_at_the_cap_and_says_where(client, people, server):
    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(12)]
    live = await server.connect(people.free)
    await live.send(type="resume", last_message_id=0)
    frames = await live.drain()
    assert new_ids(frames) == ids[:5]
    assert frames[-1] == {"type": "resume.truncated", "data": {"last_message_id": ids[4]}}

    # live delivery goes on; the rest is paged over HTTP (or resumed from there)
    after = (await send(client, people.priv, conv["id"], "live")).json()["id"]
    assert new_ids(await live.drain()) == [after]
    r = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages",
        params={"after_id": ids[4]},
        headers=people.free.headers,
    )
    assert [m["id"] for m in r.json()] == [*ids[5:], after]

    again = await server.connect(people.free, hello=True)
    await again.send(type="resume", last_message_id=ids[4])
    frames = await again.drain()
    assert new_ids(frames) == ids[5:10] and frames[-1]["type"] == "resume.truncated"
    await again.send(type="resume", last_message_id=ids[9])
    frames = await again.drain()
    assert new_ids(frames) == [*ids[10:], after]  # three left: no truncation
    assert all(f["type"] == "message.new" for f in frames)


@pytest.mark.parametrize("settings", [{"ws_resume_max_messages": 3}], indirect=True)
async def test_the_catch_up_on_connect_is_capped_too(client, people, server):
    from websockets.asyncio.client import connect

    conv = await dm(client, people.priv, people.free)
    ids = [(await send(client, people.priv, conv["id"], f"m{i}")).json()["id"] for i in range(5)]
    live = Live(await connect(server.url(people.free.token) + "&last_message_id=0"))
    server.clients.append(live)
    assert (await live.recv())["type"] == "hello"
    frames = await live.drain()
    assert new_ids(frames) == ids[:3]
    assert frames[-1] == {"type": "resume.truncated", "data": {"last_message_id": ids[2]}}


# --- normal use ---


async def test_normal_use_is_unaffected(client, people, server):
    conv = await dm(client, people.priv, people.free)
    first = (await send(client, people.priv, conv["id"], "hello")).json()["id"]
    sender = await server.connect(people.priv)
    reader = await server.connect(people.free)
    await reader.send(type="resume", last_message_id=0)
    assert new_ids(await reader.drain()) == [first]
    for i in range(3):
        sent = (await send(client, people.priv, conv["id"], f"m{i}")).json()["id"]
        await reader.send(type="typing", conversation_id=conv["id"])
        await reader.send(type="read", conversation_id=conv["id"], message_id=sent)
        got = await reader.drain()
        assert new_ids(got) == [sent] and errors(got) == []
        receipt = await sender.next("receipt.read")
        assert receipt["data"]["message_id"] == sent  # every read, as it comes
    r = await client.get(f"/api/v1/conversations/{conv['id']}", headers=people.free.headers)
    assert r.json()["unread_count"] == 0
