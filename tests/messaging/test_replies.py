"""Replies carry the message they answer, as far as the reader may still see it."""

from __future__ import annotations

import dataclasses
import datetime as dt

from tests.support.people import Person, access_token, dm, send

API = "/api/v1"


async def history(client, who: Person, conv_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/conversations/{conv_id}/messages", headers=who.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_reply_shows_the_first_line_of_the_original(client, people):
    conv = await dm(client, people.priv, people.free)
    long_line = "Is the new Le Guin in? " + "really " * 30
    first = (await send(client, people.priv, conv["id"], f"\n  {long_line}\nsecond line")).json()
    reply = await send(client, people.free, conv["id"], "Yes, shelf 3", reply_to_id=first["id"])
    assert reply.status_code == 201 and reply.json()["reply_to_id"] == first["id"]
    last = (await history(client, people.priv, conv["id"]))[-1]
    quote = last["reply_to"]
    assert quote["id"] == first["id"] and quote["available"] and not quote["deleted"]
    assert quote["sender_id"] == people.priv.id
    assert (
        quote["excerpt"].startswith("Is the new Le Guin in?") and "second" not in quote["excerpt"]
    )
    assert len(quote["excerpt"]) == 120 and quote["excerpt"].endswith("…")
    plain = (await history(client, people.priv, conv["id"]))[0]
    assert plain["reply_to"] is None  # not a reply


async def test_a_deleted_original_is_said_to_be_deleted_without_its_text(client, people):
    conv = await dm(client, people.priv, people.free)
    first = (await send(client, people.priv, conv["id"], "secret plans")).json()
    await send(client, people.free, conv["id"], "ok", reply_to_id=first["id"])
    r = await client.delete(f"{API}/messages/{first['id']}", headers=people.priv.headers)
    assert r.status_code in (200, 204)
    quote = (await history(client, people.free, conv["id"]))[-1]["reply_to"]
    assert quote == {
        "id": first["id"],
        "available": True,
        "sender_id": people.priv.id,
        "excerpt": "",
        "attachments": 0,
        "deleted": True,
    }


async def test_an_original_outside_the_readers_window_is_not_shown(client, people, clock, app):
    """A free member keeps a shorter history: a reply to an older message must not show them
    the text they can no longer read."""
    conv = await dm(client, people.priv, people.free)
    first = (await send(client, people.priv, conv["id"], "the old news")).json()
    days = app.state.runtime.settings.retention_free_days
    clock.advance(dt.timedelta(days=days + 1))
    rt = app.state.runtime
    priv, free = (
        dataclasses.replace(p, token=access_token(rt, p.id, p.family_id))
        for p in (people.priv, people.free)
    )
    await send(client, priv, conv["id"], "as I said", reply_to_id=first["id"])
    mine = (await history(client, priv, conv["id"]))[-1]["reply_to"]
    assert mine["available"] and mine["excerpt"] == "the old news"
    theirs = (await history(client, free, conv["id"]))[-1]["reply_to"]
    assert theirs == {
        "id": first["id"],
        "available": False,
        "sender_id": None,
        "excerpt": "",
        "attachments": 0,
        "deleted": False,
    }


async def test_a_reply_to_someone_blocked_in_a_group_hides_the_original(client, people):
    r = await client.post(
        f"{API}/groups",
        json={"title": "Club", "member_ids": [people.free.id, people.plus.id]},
        headers=people.priv.headers,
    )
    group = r.json()
    first = (await send(client, people.free, group["id"], "rude words")).json()
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.free.id}, headers=people.plus.headers
    )
    assert r.status_code in (200, 201, 204), r.text
    await send(client, people.priv, group["id"], "calm down", reply_to_id=first["id"])
    seen_by_blocker = (await history(client, people.plus, group["id"]))[-1]
    assert seen_by_blocker["body"] == "calm down"
    assert seen_by_blocker["reply_to"]["available"] is False
    seen_by_others = (await history(client, people.priv, group["id"]))[-1]
    assert seen_by_others["reply_to"]["excerpt"] == "rude words"
