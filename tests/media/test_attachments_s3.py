"""The same attachments on an S3-compatible store (a real SeaweedFS on loopback): uploaded,
fetched whole and in part by the recipient only, removed, purged with its message."""

from __future__ import annotations

import uuid

import pytest

from pigeon.media.s3 import S3Store
from tests.media import samples
from tests.media.test_attachments_api import fetch, uploaded
from tests.safety.conftest import travel
from tests.support.people import dm, send

API = "/api/v1"


@pytest.fixture
def settings(settings, s3_server):  # type: ignore[no-untyped-def]
    return settings.model_copy(
        update={
            "media_s3_bucket": "pigeon-app-tests",
            "media_s3_prefix": f"t-{uuid.uuid4().hex[:12]}",
            "media_s3_endpoint": s3_server.endpoint,
            "media_s3_region": s3_server.region,
            "media_s3_access_key": s3_server.access_key,
            "media_s3_secret_key": s3_server.secret_key,
        }
    )


async def stored(app) -> list[str]:  # type: ignore[no-untyped-def]
    store = app.state.runtime.media
    assert isinstance(store, S3Store)
    await store.check()
    future = app.state.runtime.clock.now().replace(year=2100)
    return await store.keys(future)


async def test_files_on_s3_are_served_to_the_recipient_and_purged_with_their_message(
    app, client, people
):
    conv = await dm(client, people.priv, people.free)
    photo = await uploaded(client, people.priv, samples.jpeg_with_gps(), "shelf.jpg")
    doc = await uploaded(client, people.priv, samples.PDF, "list.pdf")
    sent = await send(
        client, people.priv, conv["id"], "both", attachment_ids=[photo["id"], doc["id"]]
    )
    assert sent.status_code == 201
    assert len(await stored(app)) == 3  # the photo, its thumbnail, the document

    r = await fetch(client, people.free, doc["url"], Range="bytes=0-3")
    assert r.status_code == 206 and r.content == samples.PDF[:4]
    assert (await fetch(client, people.free, photo["thumbnail_url"])).status_code == 200
    assert (await fetch(client, people.outsider, photo["url"])).status_code == 404

    assert (await client.delete(doc["url"], headers=people.priv.headers)).status_code == 204
    assert len(await stored(app)) == 2

    from pigeon.messaging import retention

    message_id = sent.json()["id"]
    assert (
        await client.delete(f"{API}/messages/{message_id}", headers=people.priv.headers)
    ).status_code == 204
    travel(app, people, days=app.state.settings.retention_grace_days + 1)
    result = await retention.run_exclusive(app.state.runtime)
    assert result.purged == 1 and result.files_purged == 2
    assert await stored(app) == []


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_store_that_cannot_be_reached_is_a_clear_503_and_keeps_nothing(app, client, people):
    from pigeon.media.s3 import S3Store

    conv = await dm(client, people.priv, people.free)
    photo = await uploaded(client, people.priv, samples.png(), "kept.png")
    await send(client, people.priv, conv["id"], "", attachment_ids=[photo["id"]])
    store = app.state.runtime.media
    assert isinstance(store, S3Store)
    app.state.runtime.media = S3Store(  # the same bucket, but nobody answers there
        bucket=store.bucket,
        prefix=store.prefix,
        endpoint="http://127.0.0.1:9",
        access_key="x",
        secret_key="y",
    )
    r = await client.post(
        f"{API}/media/upload",
        files={"file": ("lost.png", samples.png(), "image/png")},
        headers=people.priv.headers,
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "media_unavailable"
    assert "127.0.0.1" not in r.text  # the details are for the log
    r = await fetch(client, people.free, photo["url"])
    assert r.status_code == 503 and r.json()["error"]["code"] == "media_unavailable"
    app.state.runtime.media = store
    assert (await fetch(client, people.free, photo["url"])).status_code == 200
