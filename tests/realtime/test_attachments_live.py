"""Files reach the other person live: the frame carries the attachments, and a removal updates
the message where it is shown."""

from __future__ import annotations

from tests.media import samples
from tests.media.test_attachments_api import uploaded
from tests.support.people import dm, send

API = "/api/v1"


async def test_a_sent_file_and_its_removal_arrive_live(client, people, server):
    conv = await dm(client, people.priv, people.free)
    live = await server.connect(people.free)
    photo = await uploaded(client, people.priv, samples.png(), "cover.png")
    await send(client, people.priv, conv["id"], "", attachment_ids=[photo["id"]])

    frame = await live.next("message.new")
    [attached] = frame["data"]["attachments"]
    assert attached["id"] == photo["id"] and attached["thumbnail_url"].endswith("/thumbnail")
    assert (attached["width"], attached["height"]) == (40, 30)

    r = await client.delete(photo["url"], headers=people.priv.headers)
    assert r.status_code == 204
    frame = await live.next("message.updated")
    assert frame["data"]["attachments"][0]["removed"] is True
