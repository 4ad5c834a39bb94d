"""Digests across processes (PostgreSQL or SQLite, and Redis): a member connected to one process
is online for the digest job running in another, and gets no digest until they are away."""

from __future__ import annotations

import uuid

import pytest

from pigeon.app import create_app
from pigeon.core.clock import Clock
from pigeon.settings import Settings
from tests.conftest import REDIS_URL
from tests.email.test_digest import AWAY, DELAY, last_seen, later, run, text_of, to
from tests.realtime.conftest import serving
from tests.support.people import People, dm, send
from tests.support.smtp import SmtpServer


@pytest.fixture
def settings(settings: Settings) -> Settings:
    if not REDIS_URL:
        pytest.skip("PIGEON_TEST_REDIS_URL is not set")
    return settings.model_copy(
        update={
            "redis_url": REDIS_URL,
            "redis_prefix": f"pigeon-test-{uuid.uuid4().hex}",
            "digest_delay_seconds": int(DELAY.total_seconds()),
            "digest_interval_seconds": 0,
        }
    )


@pytest.mark.redis
async def test_connected_to_another_process_is_online_for_the_digest_job(
    app, client, people: People, smtp: SmtpServer, settings: Settings, clock: Clock
) -> None:
    app.state.smtp = smtp
    other = create_app(settings, clock=clock)
    conv = await dm(client, people.priv, people.free)
    async with other.router.lifespan_context(other), serving(other) as there:
        live = await there.connect(people.free)
        await send(client, people.priv, conv["id"], "are you there?")
        later(app, people, clock, AWAY)
        assert await run(app) == []  # this process holds no connection of theirs; the other does
        await live.close()
        await last_seen(app, people.free.id)
    later(app, people, clock, AWAY)
    [msg] = await run(app)
    assert to(msg) == "free@example.com" and "1 message from Priv" in text_of(msg)
