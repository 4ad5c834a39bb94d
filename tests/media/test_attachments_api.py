"""Attachments through the API, as a client uses them: upload, attach, fetch, remove, purge.

Who may fetch a file is who may see its message: the sender, the recipients, nobody outside
the conversation (another community included), not a group member who blocked the sender, and
nobody once the message has left their retention window. Hostile files get a clear refusal.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pytest
from PIL import Image

from tests.media import samples
from tests.safety.conftest import travel
from tests.support.garbage import left_in_cycles
from tests.support.people import Person, dm, send

API = "/api/v1"


async def upload(
    client: Any,
    who: Person,
    content: bytes,
    name: str = "photo.jpg",
    mime: str = "image/jpeg",
    **fields: Any,
) -> Any:
    return await client.post(
        f"{API}/media/upload",
        files={"file": (name, content, mime)},
        data={k: str(v) for k, v in fields.items()},
        headers=who.headers,
    )


async def uploaded(client: Any, who: Person, content: bytes, name: str = "photo.jpg") -> dict:
    r = await upload(client, who, content, name)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def fetch(client: Any, who: Person, url: str, **headers: str) -> Any:
    return await client.get(url, headers={**who.headers, **headers})


def stored_keys(app: Any) -> set[str]:
    root = app.state.settings.media_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# --- the happy path, and what is stored ---


async def test_a_photo_is_stored_without_its_location_upright_and_with_a_thumbnail(
    app, client, people
):
    original = samples.jpeg_with_gps(64, 48)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(samples.GPS_IFD)  # it has GPS
    photo = await uploaded(client, people.priv, original, "shelf.jpg")
    assert photo["content_type"] == "image/jpeg" and photo["file_name"] == "shelf.jpg"
    assert (photo["width"], photo["height"]) == (48, 64)  # turned as the camera said
    assert photo["url"] == f"{API}/media/{photo['id']}"

    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.priv, conv["id"], "the shelf", attachment_ids=[photo["id"]])
    assert r.status_code == 201, r.text
    [attached] = r.json()["attachments"]
    assert attached["id"] == photo["id"] and attached["thumbnail_url"]

    r = await fetch(client, people.free, photo["url"])
    assert r.status_code == 200
    assert r.content != original
    served = Image.open(io.BytesIO(r.content))
    assert served.size == (48, 64)
    assert not served.getexif(), "no EXIF at all is served"
    assert b"PhoneMaker" not in r.content and b"GPS" not in r.content
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in r.headers["content-security-policy"]
    assert r.headers["content-disposition"].startswith("inline;")

    r = await fetch(client, people.free, attached["thumbnail_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    thumb = Image.open(io.BytesIO(r.content))
    assert thumb.format == "WEBP" and max(thumb.size) <= 320


async def test_the_message_carries_its_files_in_history_search_and_the_conversation_list(
    app, client, people
):
    conv = await dm(client, people.priv, people.free)
    doc = await uploaded(client, people.priv, samples.PDF, "reading list.pdf")
    pic = await uploaded(client, people.priv, samples.png(), "cover.png")
    r = await send(client, people.priv, conv["id"], "books", attachment_ids=[doc["id"], pic["id"]])
    assert [a["id"] for a in r.json()["attachments"]] == [doc["id"], pic["id"]]  # in order

    history = (
        await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers)
    ).json()
    assert [a["file_name"] for a in history[-1]["attachments"]] == ["reading list.pdf", "cover.png"]
    found = (
        await client.get(
            f"{API}/messages/search", params={"q": "books"}, headers=people.free.headers
        )
    ).json()
    assert found[0]["attachments"][0]["content_type"] == "application/pdf"
    listing = (await client.get(f"{API}/conversations", headers=people.free.headers)).json()
    assert len(listing[0]["last_message"]["attachments"]) == 2


async def test_a_file_alone_is_a_message_but_an_empty_message_is_not(client, people):
    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.priv, conv["id"], "")
    assert r.status_code == 422 and r.json()["error"]["fields"]["body"] == "must not be empty"
    pic = await uploaded(client, people.priv, samples.png())
    r = await send(client, people.priv, conv["id"], "", attachment_ids=[pic["id"]])
    assert r.status_code == 201 and r.json()["body"] == ""


async def test_a_pdf_is_a_download_and_ranges_and_etags_work(client, people):
    conv = await dm(client, people.priv, people.free)
    doc = await uploaded(client, people.priv, samples.PDF, "list.pdf")
    await send(client, people.priv, conv["id"], "list", attachment_ids=[doc["id"]])
    assert doc["thumbnail_url"] is None and doc["width"] is None

    r = await fetch(client, people.free, doc["url"])
    assert r.content == samples.PDF and r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"].startswith("attachment;")
    assert 'filename="list.pdf"' in r.headers["content-disposition"]
    etag = r.headers["etag"]

    assert (
        await fetch(client, people.free, doc["url"], **{"If-None-Match": etag})
    ).status_code == 304
    part = await fetch(client, people.free, doc["url"], Range="bytes=5-9")
    assert part.status_code == 206 and part.content == samples.PDF[5:10]
    assert part.headers["content-range"] == f"bytes 5-9/{len(samples.PDF)}"
    tail = await fetch(client, people.free, doc["url"], Range="bytes=-4")
    assert tail.content == samples.PDF[-4:]
    past = await fetch(client, people.free, doc["url"], Range=f"bytes={len(samples.PDF)}-")
    assert (
        past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(samples.PDF)}"
    )


# --- who may fetch ---


async def test_only_those_who_see_the_message_can_fetch_its_file(app, client, people):
    pic = await uploaded(client, people.priv, samples.png())
    url = pic["url"]
    assert (await fetch(client, people.priv, url)).status_code == 200  # the uploader, unattached
    assert (await fetch(client, people.free, url)).status_code == 404  # not yet anyone else's

    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "look", attachment_ids=[pic["id"]])
    assert (await fetch(client, people.free, url)).status_code == 200
    for stranger in (people.free2, people.outsider, people.admin):
        r = await fetch(client, stranger, url)
        assert r.status_code == 404 and r.json()["error"]["code"] == "attachment_not_found"
    r = await client.get(url)
    assert r.status_code == 401


async def test_a_group_member_who_blocked_the_sender_cannot_fetch_their_files(client, people):
    r = await client.post(
        f"{API}/groups",
        json={"title": "Club", "member_ids": [people.free.id, people.free2.id]},
        headers=people.priv.headers,
    )
    group = r.json()
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.priv.id}, headers=people.free2.headers
    )
    assert r.status_code == 201
    pic = await uploaded(client, people.priv, samples.png())
    assert (
        await send(client, people.priv, group["id"], "for the club", attachment_ids=[pic["id"]])
    ).status_code == 201
    assert (await fetch(client, people.free, pic["url"])).status_code == 200
    assert (await fetch(client, people.free2, pic["url"])).status_code == 404


async def test_a_file_leaves_with_its_message_from_the_retention_window(app, client, people):
    conv = await dm(client, people.priv, people.free)
    pic = await uploaded(client, people.priv, samples.png())
    await send(client, people.priv, conv["id"], "old news", attachment_ids=[pic["id"]])
    travel(app, people, days=40)  # past a free member's 30 days, within a privileged 180
    assert (await fetch(client, people.free, pic["url"])).status_code == 404
    assert (await fetch(client, people.priv, pic["url"])).status_code == 200


# --- attaching ---


async def test_only_ones_own_unused_uploads_can_be_attached(client, people):
    conv = await dm(client, people.priv, people.free)
    mine = await uploaded(client, people.priv, samples.png())
    theirs = await uploaded(client, people.free, samples.png())

    r = await send(client, people.priv, conv["id"], "x", attachment_ids=[theirs["id"]])
    assert r.status_code == 422 and r.json()["error"]["code"] == "attachment_not_found"
    r = await send(client, people.priv, conv["id"], "x", attachment_ids=[mine["id"], mine["id"]])
    assert r.status_code == 422 and r.json()["error"]["code"] == "attachment_repeated"
    r = await send(client, people.priv, conv["id"], "x", attachment_ids=list(range(1, 12)))
    assert r.status_code == 422  # at most ten
    assert (
        await send(client, people.priv, conv["id"], "x", attachment_ids=[mine["id"]])
    ).status_code == 201
    r = await send(client, people.priv, conv["id"], "again", attachment_ids=[mine["id"]])
    assert r.status_code == 422 and r.json()["error"]["code"] == "attachment_in_use"
    # a refused send changed nothing: the other person's upload is still theirs to use
    other = await dm(client, people.free, people.priv)
    assert (
        await send(client, people.free, other["id"], "y", attachment_ids=[theirs["id"]])
    ).status_code == 201


async def test_a_retried_send_returns_the_original_with_its_files(client, people):
    conv = await dm(client, people.priv, people.free)
    pic = await uploaded(client, people.priv, samples.png())
    first = await send(
        client, people.priv, conv["id"], "once", client_msg_id="c-1", attachment_ids=[pic["id"]]
    )
    again = await send(
        client, people.priv, conv["id"], "once", client_msg_id="c-1", attachment_ids=[pic["id"]]
    )
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["attachments"] == first.json()["attachments"]


# --- hostile and oversized files ---


@pytest.mark.parametrize(
    ("content", "name", "mime", "status", "code"),
    [
        (samples.HTML_AS_JPEG, "cat.jpg", "image/jpeg", 415, "unsupported_type"),
        (samples.SVG_WITH_SCRIPT, "logo.svg", "image/svg+xml", 415, "unsupported_type"),
        (b"", "empty.txt", "text/plain", 415, "unsupported_type"),
        (samples.png_bomb(), "bomb.png", "image/png", 413, "image_too_large"),
        (
            b"MZ\x90\x00" + b"\x00" * 200,
            "setup.exe",
            "application/octet-stream",
            415,
            "unsupported_type",
        ),
    ],
    ids=["html-as-jpeg", "svg-script", "empty", "png-bomb", "program"],
)
async def test_hostile_files_are_refused_and_nothing_is_kept(
    app, client, people, content, name, mime, status, code
):
    r = await upload(client, people.priv, content, name, mime)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] in (code, "empty_file")
    assert stored_keys(app) == set()
    assert not any((app.state.settings.data_dir / "incoming").rglob("upload-*"))


async def test_a_file_past_the_tier_limit_is_refused_while_it_streams_in(app, client, people):
    app.state.settings.media_max_bytes_free = 1000
    r = await upload(client, people.free, samples.png() + b"\x00" * 2000, "big.png", "image/png")
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    r = await upload(client, people.priv, samples.png(), "ok.png", "image/png")  # privileged: more
    assert r.status_code == 201


async def test_the_storage_quota_holds(app, client, people):
    first = await uploaded(client, people.priv, samples.png())
    app.state.settings.media_quota_bytes_privileged = first["size"] * 2  # what is stored counts
    await uploaded(client, people.priv, samples.png())
    r = await upload(client, people.priv, samples.png(), "third.png", "image/png")
    assert r.status_code == 413 and r.json()["error"]["code"] == "quota_exceeded"


async def test_a_malformed_upload_gets_a_clear_error(client, people):
    r = await client.post(f"{API}/media/upload", json={"file": "x"}, headers=people.priv.headers)
    assert r.status_code == 415
    r = await client.post(
        f"{API}/media/upload",
        data={"note": "no file"},
        files={"other": ("a", b"b")},
        headers=people.priv.headers,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "file_missing"


# --- removal, purge, sweep ---


async def test_removing_a_file_leaves_a_note_in_the_message_and_removes_the_bytes(
    app, client, people
):
    conv = await dm(client, people.priv, people.free)
    pic = await uploaded(client, people.priv, samples.png())
    await send(client, people.priv, conv["id"], "oops", attachment_ids=[pic["id"]])
    assert len(stored_keys(app)) == 2  # the picture and its thumbnail

    r = await client.delete(pic["url"], headers=people.free.headers)
    assert r.status_code == 403  # the recipient sees it, but it is not theirs
    r = await client.delete(pic["url"], headers=people.priv.headers)
    assert r.status_code == 204
    assert stored_keys(app) == set()
    assert (await fetch(client, people.free, pic["url"])).status_code == 404
    history = (
        await client.get(f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers)
    ).json()
    [note] = history[-1]["attachments"]
    assert note["removed"] is True and note["url"] is None and note["file_name"]


async def test_a_purged_message_takes_its_files_and_unattached_uploads_are_swept(
    app, client, people
):
    from pigeon.messaging import retention

    conv = await dm(client, people.priv, people.free)
    pic = await uploaded(client, people.priv, samples.png())
    sent = (
        await send(client, people.priv, conv["id"], "gone soon", attachment_ids=[pic["id"]])
    ).json()
    await uploaded(client, people.priv, samples.PDF, "never sent.pdf")
    assert len(stored_keys(app)) == 3
    r = await client.delete(f"{API}/messages/{sent['id']}", headers=people.priv.headers)
    assert r.status_code == 204
    assert len(stored_keys(app)) == 3  # deleted, not yet purged: kept through the grace period

    travel(app, people, days=app.state.settings.retention_grace_days + 1)
    result = await retention.run_exclusive(app.state.runtime)
    assert result.purged == 1 and result.files_purged == 1 and result.uploads_swept == 1
    assert stored_keys(app) == set()


async def test_a_file_no_row_names_is_swept_after_a_day(app, client, people):
    from pigeon.media.storage import new_key
    from pigeon.messaging import attachments

    rt = app.state.runtime
    orphan = app.state.settings.data_dir / "orphan.bin"
    orphan.write_bytes(b"left by a crash between the file and its row")
    await rt.media.save(new_key(), orphan, "application/octet-stream")
    kept = await uploaded(client, people.priv, samples.png())
    half = attachments.incoming(app.state.settings) / "upload-interrupted"
    half.write_bytes(b"half an upload")  # a crash in the middle of receiving
    assert (await attachments.sweep(rt)).orphans == 0  # too young to tell
    assert half.exists()
    now = rt.clock.now() + dt.timedelta(hours=25)
    result = await attachments.sweep(rt, now=now)
    assert result.orphans == 1 and result.unattached == 1
    assert kept  # the upload was unattached too: swept with its files
    assert stored_keys(app) == set()
    assert not half.exists()


async def test_a_members_export_holds_the_files_they_sent(client, people):
    import json
    import zipfile

    conv = await dm(client, people.priv, people.free)
    mine = await uploaded(client, people.priv, samples.png(), "cover.png")
    await send(client, people.priv, conv["id"], "the cover", attachment_ids=[mine["id"]])
    theirs = await uploaded(client, people.free, samples.PDF, "list.pdf")
    await send(client, people.free, conv["id"], "the list", attachment_ids=[theirs["id"]])

    r = await client.get(f"{API}/me/export", headers=people.priv.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    data = json.loads(archive.read("export.json"))
    [entry] = data["files"]
    assert entry["path"] == f"files/{mine['id']}-cover.png"
    assert archive.read(entry["path"]) == (await fetch(client, people.priv, mine["url"])).content
    assert not [n for n in archive.namelist() if "list.pdf" in n]  # theirs to export, not mine


async def test_a_reported_message_keeps_its_files_until_the_report_is_resolved(app, client, people):
    from pigeon.messaging import attachments

    rt = app.state.runtime
    conv = await dm(client, people.priv, people.free)
    pic = await uploaded(client, people.priv, samples.png())
    sent = (await send(client, people.priv, conv["id"], "look", attachment_ids=[pic["id"]])).json()
    r = await client.post(
        f"{API}/messages/{sent['id']}/report", json={"reason": "spam"}, headers=people.free.headers
    )
    assert r.status_code == 201
    report_id = r.json()["id"]
    assert (await client.delete(pic["url"], headers=people.priv.headers)).status_code == 204
    assert (await fetch(client, people.free, pic["url"])).status_code == 404  # gone for readers
    later = rt.clock.now() + dt.timedelta(hours=25)
    await attachments.sweep(rt, now=later)
    assert len(stored_keys(app)) == 2  # kept for the moderators

    item = (
        await client.get(f"{API}/admin/reports/{report_id}", headers=people.admin.headers)
    ).json()
    [held] = item["attachments"]
    assert held["removed"] is True and held["url"].startswith(f"{API}/admin/reports/")
    r = await fetch(client, people.admin, held["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert (await fetch(client, people.admin, held["thumbnail_url"])).status_code == 200
    assert (await fetch(client, people.free, held["url"])).status_code == 403  # staff only
    other = await client.post(
        f"{API}/messages/{sent['id'] + 1000}/report",
        json={"reason": "spam"},
        headers=people.free.headers,
    )
    assert other.status_code == 404

    r = await client.post(
        f"{API}/admin/reports/{report_id}/resolve",
        json={"action": "dismiss"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200, r.text
    assert (await attachments.sweep(rt, now=later)).orphans == 2
    assert stored_keys(app) == set()
    assert (await fetch(client, people.admin, held["url"])).status_code == 404


async def test_a_phone_photo_in_heif_is_stored_as_an_upright_jpeg_without_its_location(
    client, people
):
    original = samples.heic_with_gps(64, 48)
    photo = await uploaded(client, people.priv, original, "IMG_0042.HEIC")
    assert photo["content_type"] == "image/jpeg" and photo["file_name"] == "IMG_0042.jpg"
    assert (photo["width"], photo["height"]) == (48, 64)
    r = await fetch(client, people.priv, photo["url"])
    served = Image.open(io.BytesIO(r.content))
    assert served.format == "JPEG" and served.size == (48, 64)
    assert not served.getexif() and b"PhoneMaker" not in r.content


async def test_numbers_past_what_any_file_or_id_has_get_a_clear_answer(client, people):
    conv = await dm(client, people.priv, people.free)
    doc = await uploaded(client, people.priv, samples.PDF, "list.pdf")
    await send(client, people.priv, conv["id"], "list", attachment_ids=[doc["id"]])
    r = await fetch(client, people.free, doc["url"], Range="bytes=" + "9" * 5000 + "-")
    assert r.status_code == 200 and r.content == samples.PDF  # no such range: the whole file
    for odd in ("²", "٣", "9" * 30, "-1"):
        r = await upload(
            client, people.priv, samples.png(), "x.png", "image/png", conversation_id=odd
        )
        assert r.status_code == 422, (odd, r.text)
        assert r.json()["error"]["fields"]["conversation_id"]


async def test_a_history_page_with_attachments_leaves_nothing_for_the_cycle_collector(
    client, people
):
    """History is the most read page: what reading its attachments builds is freed as soon as
    the page is served, not left in reference cycles that pile up until the next collection."""
    conv = await dm(client, people.priv, people.free)
    for i in range(3):
        pic = await uploaded(client, people.priv, samples.png(), f"p{i}.png")
        r = await send(client, people.priv, conv["id"], f"m{i}", attachment_ids=[pic["id"]])
        assert r.status_code == 201, r.text

    async def page() -> None:
        r = await client.get(
            f"{API}/conversations/{conv['id']}/messages", headers=people.free.headers
        )
        assert [m["attachments"][0]["file_name"] for m in r.json()] == [
            "p0.png",
            "p1.png",
            "p2.png",
        ]

    assert await left_in_cycles(page) == []
