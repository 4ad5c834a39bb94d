"""Two processes sharing the databases, the media store and Redis: a file uploaded through one
is attached, delivered live and served through the other."""

from __future__ import annotations

import uuid

import pytest
from httpx import ASGITransport, AsyncClient

from pigeon.app import create_app
from tests.conftest import REDIS_URL
from tests.media import samples
from tests.media.test_attachments_api import uploaded
from tests.realtime.conftest import serving
from tests.support.people import dm, send

API = "/api/v1"


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    if not REDIS_URL:
        pytest.skip("PIGEON_TEST_REDIS_URL is not set")
    prefix = f"pigeon-test-{uuid.uuid4().hex}"
    return settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})


@pytest.mark.redis
async def test_a_file_sent_through_one_process_arrives_and_is_served_through_another(
    settings, client, people, clock
):
    other = create_app(settings, clock=clock)
    async with (
        other.router.lifespan_context(other),
        serving(other) as other_server,
        AsyncClient(transport=ASGITransport(app=other), base_url="http://testserver") as there,
    ):
        conv = await dm(client, people.priv, people.free)
        live = await other_server.connect(people.free)
        photo = await uploaded(client, people.priv, samples.png(), "cover.png")
        await send(client, people.priv, conv["id"], "", attachment_ids=[photo["id"]])
        frame = await live.next("message.new")
        assert frame["data"]["attachments"][0]["id"] == photo["id"]
        r = await there.get(photo["thumbnail_url"], headers=people.free.headers)
        assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
