"""Two processes sharing the databases and Redis: someone connected to either gets no push,
and someone away gets each push once, however many processes run."""

from __future__ import annotations

import uuid

import pytest

from pigeon.app import create_app
from tests.conftest import REDIS_URL
from tests.push.test_push import sent, settled, subscribe
from tests.realtime.conftest import serving
from tests.support.people import dm


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    if not REDIS_URL:
        pytest.skip("PIGEON_TEST_REDIS_URL is not set")
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    return settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.mark.redis
async def test_presence_and_the_lease_span_processes(
    app, settings, client, people, clock, push_service
) -> None:
    await subscribe(client, people.free, push_service, "free-phone")
    await subscribe(client, people.free2, push_service, "free2-phone")
    to_free = await dm(client, people.priv, people.free)
    to_free2 = await dm(client, people.priv, people.free2)
    other = create_app(settings, clock=clock)
    async with other.router.lifespan_context(other), serving(other) as elsewhere:
        live = await elsewhere.connect(people.free)  # connected to the other process
        await sent(client, people.priv, to_free["id"], "you are here")
        await live.next("message.new")
        for n in range(3):
            await settled(app, await sent(client, people.priv, to_free2["id"], f"away {n}"))
        assert push_service.to("free-phone") == []
        assert len(push_service.to("free2-phone")) == 3
