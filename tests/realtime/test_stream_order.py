"""Two processes on PostgreSQL and Redis send side by side, and resume stays exact.

A send in one process is held open after its id was handed out, while a later send through
the other process commits: nobody sees the later id (live, in history, in `hello`) until the
lower one has settled, its sender's answer waits for that too, and then both arrive in id
order. Without this, a client that saw the later id and reconnected would skip the lower one.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from pigeon.accounts import directory
from pigeon.core.events import EVENTS_CHANNEL, Envelope, positioned
from pigeon.core.stream import RedisStream
from pigeon.messaging import sending
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import MessageNew
from pigeon.messaging.schemas import MessageOut
from tests.conftest import POSTGRES_URL, REDIS_URL
from tests.realtime.conftest import Server, serving
from tests.support.people import dm, send

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.skipif(not (POSTGRES_URL and REDIS_URL), reason="needs PostgreSQL and Redis"),
]


@pytest.fixture
def settings(settings, backend):  # type: ignore[no-untyped-def]
    if backend != "postgres":
        pytest.skip("on SQLite one writer commits sends in id order")
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    return settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.fixture
async def other(settings, clock) -> AsyncIterator[tuple[Server, AsyncClient]]:  # type: ignore[no-untyped-def]
    """A second process: its own runtime, hub and stream, on the same databases and Redis."""
    from pigeon.app import create_app

    second = create_app(settings, clock=clock)
    async with second.router.lifespan_context(second), serving(second) as live:
        transport = ASGITransport(app=second)
        async with AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield live, http


def new_ids(frames: list[dict[str, Any]]) -> list[int]:
    return [f["id"] for f in frames if f["type"] == "message.new"]


async def hold_a_send(
    app: Any, user_id: int, conversation_id: int, body: str, *, at_once: bool = False
) -> tuple[Any, Any]:
    """A send through `app` whose unit of work has not committed: the unit of work, and the
    message. The send goes in the unit of work's transaction (its messaging session is open,
    as a request's that wrote there first), so it is written but not committed; or, `at_once`,
    it commits by itself (`send_tx.InTransaction._at_once`) and holds its place until the unit
    of work commits."""
    rt = app.state.runtime
    viewer = await directory.get_principal(rt, user_id)
    uow = rt.uow()
    if not at_once:
        await uow.messaging.connection()  # its transaction begun: the send joins it
    ctx = Ctx(rt=rt, sends=app.state.sends, viewer=viewer, uow=uow)
    message, created = await sending.send_message(ctx, conversation_id, body=body)
    assert created
    return uow, message


async def plus_watched_on_both(
    client: AsyncClient, people: Any, server: Server, there: Server
) -> tuple[dict[str, Any], dict[str, Any], tuple[Any, Any]]:
    """plus's conversations with priv and with manager, and a device of plus's connected to
    each process."""
    a = await dm(client, people.priv, people.plus)
    b = await dm(client, people.manager, people.plus)
    return a, b, (await server.connect(people.plus), await there.connect(people.plus))


@pytest.mark.parametrize("at_once", [False, True], ids=["in_transaction", "at_once"])
async def test_no_one_sees_an_id_while_a_lower_one_is_still_committing(
    app, client, people, server, other, at_once
) -> None:
    there, there_http = other
    mine = await dm(client, people.priv, people.plus)
    theirs = await dm(client, people.manager, people.priv)
    here = await server.connect(people.priv)  # priv's phone, on this process
    away = await there.connect(people.priv)  # priv's laptop, on the other

    uow, held = await hold_a_send(
        app, people.priv.id, mine["id"], "sent first, slow to commit", at_once=at_once
    )
    later = asyncio.ensure_future(send(there_http, people.manager, theirs["id"], "sent second"))
    await asyncio.sleep(0.3)
    assert not later.done(), "answered before a lower id settled"
    assert new_ids(await here.drain()) == []
    assert new_ids(await away.drain()) == []
    history = await client.get(
        f"/api/v1/conversations/{theirs['id']}/messages", headers=people.priv.headers
    )
    assert [m["body"] for m in history.json()] == []  # committed, but not shown yet
    own = await client.get(
        f"/api/v1/conversations/{mine['id']}/messages", headers=people.priv.headers
    )
    assert own.json() == []  # at once: committed too, but its place is still held
    fresh = await server.connect(people.priv, hello=False)
    hello = await fresh.recv()
    assert hello["type"] == "hello" and hello["data"]["latest_message_id"] < held.id

    await uow.commit()
    await uow.close()
    answer = await asyncio.wait_for(later, 5)
    assert answer.status_code == 201, answer.text
    second = answer.json()["id"]
    assert second > held.id
    for device in (here, away, fresh):
        got: list[int] = []
        while len(got) < 2:
            got += new_ids([await device.next("message.new")])
        assert got == [held.id, second]
    history = await client.get(
        f"/api/v1/conversations/{theirs['id']}/messages", headers=people.priv.headers
    )
    assert [m["id"] for m in history.json()] == [second]

    # a device that saw neither resumes from before both and gets both, in order
    back = await there.connect(people.priv)
    await back.send(type="resume", last_message_id=hello["data"]["latest_message_id"])
    assert new_ids(await back.drain()) == [held.id, second]


async def test_a_send_rolled_back_releases_the_ones_after_it(
    app, client, people, server, other
) -> None:
    there, there_http = other
    mine = await dm(client, people.priv, people.plus)
    theirs = await dm(client, people.manager, people.priv)
    here = await server.connect(people.priv)
    uow, held = await hold_a_send(app, people.priv.id, mine["id"], "never sent")
    later = asyncio.ensure_future(send(there_http, people.manager, theirs["id"], "sent"))
    await asyncio.sleep(0.2)
    assert not later.done()
    await uow.rollback()
    await uow.close()
    answer = await asyncio.wait_for(later, 5)
    assert answer.status_code == 201
    assert new_ids([await here.next("message.new")]) == [answer.json()["id"]]
    listed = await client.get(
        f"/api/v1/conversations/{mine['id']}/messages", headers=people.priv.headers
    )
    assert listed.json() == []


async def test_sends_from_both_processes_at_once_arrive_once_each_in_order(
    app, client, people, server, other
) -> None:
    there, there_http = other
    a, b, devices = await plus_watched_on_both(client, people, server, there)

    async def burst(http: AsyncClient, who: Any, conv: dict[str, Any], n: int) -> list[int]:
        sent = await asyncio.gather(
            *(send(http, who, conv["id"], f"{who.username} {i}") for i in range(n))
        )
        assert all(r.status_code == 201 for r in sent), [r.text for r in sent]
        return [r.json()["id"] for r in sent]

    ids = sorted(
        sum(
            await asyncio.gather(
                burst(client, people.priv, a, 20), burst(there_http, people.manager, b, 20)
            ),
            [],
        )
    )
    for device in devices:
        got: list[int] = []
        while len(got) < len(ids):
            got += new_ids([await device.next("message.new")])
        assert got == ids  # every one, once, in id order, whichever process sent it


async def test_one_persons_badge_counts_up_exactly_when_both_processes_send_to_them(
    app, client, people, server, other
) -> None:
    there, there_http = other
    a, b, devices = await plus_watched_on_both(client, people, server, there)
    sent = await asyncio.gather(
        *(send(client, people.priv, a["id"], f"a {i}") for i in range(12)),
        *(send(there_http, people.manager, b["id"], f"b {i}") for i in range(12)),
    )
    assert all(r.status_code == 201 for r in sent), [r.text for r in sent]
    for device in devices:
        totals = [(await device.next("unread"))["data"]["total"] for _ in range(24)]
        assert totals == list(range(1, 25))  # each send's total counts every one before it
    badge = await client.get("/api/v1/unread", headers=people.plus.headers)
    assert badge.json()["total"] == 24


async def test_a_send_that_held_its_place_too_long_is_refused_and_leaves_nothing(
    app, client, people
) -> None:
    from pigeon.core.uow import StreamLeaseEnded

    conv = await dm(client, people.priv, people.plus)
    uow, held = await hold_a_send(app, people.priv.id, conv["id"], "too slow")
    [ticket] = uow._tickets
    ticket.reserved_at -= ticket.lease  # as if the process had stalled mid-send
    with pytest.raises(StreamLeaseEnded):
        await uow.commit()
    await uow.rollback()
    await uow.close()
    listed = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    assert listed.json() == []  # its place may have lapsed: it must never commit
    again = await send(client, people.priv, conv["id"], "sent again")
    assert again.status_code == 201 and again.json()["id"] > held.id


async def test_one_client_msg_id_sent_twice_at_once_makes_one_message(
    app, client, people, other
) -> None:
    _, there_http = other
    conv = await dm(client, people.priv, people.plus)
    elsewhere = await dm(client, people.priv, people.manager)
    same = await asyncio.gather(
        send(client, people.priv, conv["id"], "once", client_msg_id="twice-1"),
        send(there_http, people.priv, conv["id"], "once", client_msg_id="twice-1"),
    )
    assert sorted(r.status_code for r in same) == [200, 201], [r.text for r in same]
    assert same[0].json()["id"] == same[1].json()["id"]
    crossed = await asyncio.gather(
        send(client, people.priv, conv["id"], "here", client_msg_id="twice-2"),
        send(there_http, people.priv, elsewhere["id"], "there", client_msg_id="twice-2"),
    )
    codes = sorted(r.status_code for r in crossed)
    assert codes in ([201, 400], [201, 422]), [r.text for r in crossed]
    refused = next(r for r in crossed if r.status_code != 201)
    assert refused.json()["error"]["code"] == "client_msg_id_reused"
    listed = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    bodies = [m["body"] for m in listed.json()]
    assert bodies.count("once") == 1


async def test_the_push_cursor_never_passes_a_send_still_committing(
    app, client, people, other
) -> None:
    from pigeon.messaging.push_fanout import recipients_of

    _, there_http = other
    mine = await dm(client, people.priv, people.plus)
    theirs = await dm(client, people.manager, people.priv)
    rt = app.state.runtime
    before = rt.stream.position
    uow, held = await hold_a_send(app, people.priv.id, mine["id"], "slow")
    later = asyncio.ensure_future(send(there_http, people.manager, theirs["id"], "quick"))
    await asyncio.sleep(0.2)
    _, cursor = await recipients_of(rt.dbs.messaging, before, upto=rt.stream.upto())
    assert cursor < held.id  # moving to the later id would skip the held one for good
    await uow.commit()
    await uow.close()
    quick = (await asyncio.wait_for(later, 5)).json()["id"]
    found, cursor = await recipients_of(rt.dbs.messaging, before, upto=rt.stream.upto())
    assert [m.id for m in found] == [held.id, quick] and cursor == quick


async def test_a_process_ahead_of_its_events_still_hands_them_out_in_id_order(
    app, client, people, server
) -> None:
    """A process learns the position its own release made when the release returns, before
    the envelopes published with it come round on the events channel. A higher id parked
    meanwhile must wait for the lower one's envelope, not go out on what the process knows:
    the badge totals riding with them would count down (the CI run that found it: 12, 11)."""
    hub = app.state.hub
    conv = await dm(client, people.priv, people.plus)
    device = await server.connect(people.plus)
    sent = (await send(client, people.priv, conv["id"], "a message to copy")).json()
    # heard before the envelopes below (connected after the send, the device might have
    # heard it among them or not, as its envelope came round before or after the connect)
    assert (await device.next("message.new"))["id"] == sent["id"]
    low = sent["id"] + 1_000  # above anything stored
    high = low + 1

    def envelope(message_id: int, upto: int | None) -> bytes:
        data = MessageOut.model_validate({**sent, "id": message_id})
        frame = MessageNew(data=data, id=message_id).encode()
        encoded = Envelope(frame, [people.plus.id], sent_at=time.time()).encode()
        return encoded if upto is None else positioned(upto, encoded)

    hub.deliver(envelope(high, upto=low - 1))  # committed second, heard first: parked
    hub.stream.advance(high)  # this process's release of `low` returned: both are settled
    hub.deliver(Envelope(b"{}", [], sent_at=time.time()).encode())  # anything, for nobody
    hub.deliver(envelope(low, upto=high))  # `low`'s own envelope comes round
    got = [(await device.next("message.new"))["id"] for _ in range(2)]
    assert got == [low, high]


async def test_a_place_left_by_a_dead_process_holds_delivery_only_until_its_lease_ends(
    app, client, people, server, settings
) -> None:
    """A process that died mid-send leaves its place in the stream; the message sent after it
    is parked in every hub until a sweep drops the place, and the sweep's position must reach
    the hubs on the events channel, or the message would stay parked."""
    rt = app.state.runtime
    conv = await dm(client, people.priv, people.plus)
    device = await server.connect(people.plus)

    async def newest() -> int:
        return 0

    channel = rt.broker.redis_channel(EVENTS_CHANNEL)
    dead = RedisStream(
        newest, lambda: rt.broker.redis, settings.redis_prefix, channel=channel, lease=0.5
    )
    await dead.reserve()  # and never released: the process was killed
    answer = await send(client, people.priv, conv["id"], "sent behind a dead place")
    assert answer.status_code == 201, answer.text
    got = await device.next("message.new")
    assert got["id"] == answer.json()["id"]
