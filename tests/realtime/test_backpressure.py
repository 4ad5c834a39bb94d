"""A reader that stops reading is cut off (and can resume); nobody else waits for it."""

from __future__ import annotations

import os

import pytest

from pigeon.core import metrics
from pigeon.messaging.events import ConversationChange, ConversationUpdated
from tests.support.people import dm, send


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    return settings.model_copy(update={"ws_queue_size": 8})


async def test_a_stalled_reader_is_disconnected_without_slowing_anyone(client, people, server):
    conv = await dm(client, people.priv, people.free)
    before = metrics.slow_consumers._value.get()
    stalled = await server.connect(people.free, max_queue=1)  # the client stops reading
    healthy = await server.connect(people.plus)
    hub = server.app.state.hub
    pad = os.urandom(1024).hex()  # 2 KiB that no compression shrinks
    publisher = server.app.state.runtime.publisher
    for i in range(1, 2000):
        change = ConversationChange(conversation_id=i, change="title", title=pad)
        await publisher.events(
            [(ConversationUpdated(data=change), [people.free.id, people.plus.id], None)]
        )
        frame = await healthy.next("conversation.updated", timeout=2)  # never held up
        assert frame["data"]["conversation_id"] == i
        if people.free.id not in hub.by_user:
            break
    assert people.free.id not in hub.by_user, "the stalled reader was never cut off"
    assert metrics.slow_consumers._value.get() == before + 1

    # the stalled client, once it reads again, finds out why, and can catch up
    code, reason = await stalled.closed(timeout=10)
    assert (code, reason) == (4008, "slow consumer")
    missed = (await send(client, people.priv, conv["id"], "while you were away")).json()
    again = await server.connect(people.free)
    await again.send(type="resume", last_message_id=0)
    frames = await again.drain()
    assert [f["id"] for f in frames if f["type"] == "message.new"] == [missed["id"]]
