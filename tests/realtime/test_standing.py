"""Suspending or deactivating someone closes their live connections in every process: the
change is announced, every process forgets what it believed of them, and its check of the
people connected to it (every second) closes theirs. A change nobody announced is found once
that belief runs out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import update

from pigeon.accounts.models import User
from tests.conftest import REDIS_URL
from tests.realtime.conftest import Server, serving
from tests.support.people import dm, send

pytestmark = [
    pytest.mark.redis,
    pytest.mark.skipif(not REDIS_URL, reason="needs Redis"),
]


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    return settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.fixture
async def other(settings, clock) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    """A second process: its own runtime and hub, on the same databases and Redis."""
    from pigeon.app import create_app

    second = create_app(settings, clock=clock)
    async with second.router.lifespan_context(second), serving(second) as live:
        yield live


async def test_a_suspension_through_one_process_closes_the_persons_sockets_in_both(
    client, people, server, other
) -> None:
    conv = await dm(client, people.priv, people.plus)
    here = await server.connect(people.free)
    away = await other.connect(people.free)
    bystander = await other.connect(people.plus)
    r = await client.patch(
        f"/api/v1/admin/users/{people.free.id}",
        json={"is_active": False},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    for sock in (here, away):
        assert await sock.closed(timeout=3) == (4403, "account_suspended")
    await send(client, people.priv, conv["id"], "still here")
    got = await bystander.next("message.new")
    assert got["data"]["body"] == "still here"  # nobody else was closed


async def test_a_moderators_suspension_in_the_other_process_closes_sockets_there(
    client, people, server, other
) -> None:
    away = await other.connect(people.free)
    transport = ASGITransport(app=other.app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as there:
        r = await there.post(  # the other process's moderation API this time
            f"/api/v1/admin/users/{people.free.id}/suspend",
            json={"until": "2099-01-01T00:00:00Z", "reason": "spam"},
            headers=people.admin.headers,
        )
    assert r.status_code == 200, r.text
    assert await away.closed(timeout=3) == (4403, "account_suspended")


async def test_a_change_no_process_heard_of_is_found_once_its_belief_runs_out(
    people, server
) -> None:
    rt, hub = server.app.state.runtime, server.app.state.hub
    rt.people.seconds = 0.2  # what the process believes of people expires soon
    hub.check_interval = 0.1
    sock = await server.connect(people.free)
    async with rt.dbs.app.write() as session:  # written where no announcement goes out
        await session.execute(update(User).where(User.id == people.free.id).values(is_active=False))
    assert await sock.closed(timeout=3) == (4403, "account_suspended")
