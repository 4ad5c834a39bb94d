"""Files through the pages with script off: the reply form sends photos and files, the thread
shows them (thumbnails with their size reserved, cards with name, size and a download link),
refusals are explained in place with the message kept, and nothing is left behind by a form
that is refused."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import func, select

from pigeon.messaging.models import Attachment
from pigeon.web.views import human_size
from tests.media import samples
from tests.support.people import Person, dm, send
from tests.web.support import csrf_of, signed_in

API = "/api/v1"
PHOTO = samples.png(640, 480)  # its thumbnail: 320 x 240


async def reply(
    c: Any,
    conv_id: int,
    body: str,
    files: list[tuple[str, bytes, str]],
    *,
    token: str | None = None,
    **fields: Any,
) -> Any:
    """Submit the thread's reply form as the browser does: multipart, text fields first."""
    if token is None:
        token = csrf_of(await c.get(f"/messages/{conv_id}"))
    return await c.post(
        f"/messages/{conv_id}/send",
        data={"csrf_token": token, "body": body, **fields},
        files=[("files", f) for f in files] or {"files": ("", b"", "application/octet-stream")},
    )


async def attachment_rows(app: Any) -> int:
    async with app.state.runtime.dbs.messaging.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Attachment)) or 0)


def stored_files(app: Any) -> list[str]:
    root = app.state.settings.media_dir
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]


def incoming_files(app: Any) -> list[str]:
    root = app.state.settings.data_dir / "incoming"
    return [p.name for p in root.rglob("*") if p.is_file()] if root.exists() else []


def nothing_left(app: Any) -> None:
    assert stored_files(app) == [] and incoming_files(app) == []


async def history(client: Any, who: Person, conv_id: int) -> list[dict[str, Any]]:
    r = await client.get(f"{API}/conversations/{conv_id}/messages", headers=who.headers)
    return r.json()  # type: ignore[no-any-return]


def message_html(page: str, message_id: int) -> str:
    item = page[page.index(f'id="m{message_id}"') :]
    return item[: item.index('<div class="meta">')]  # its files and text, up to the time


def draft_of(page: str) -> str:
    match = re.search(r'<textarea id="reply-body"[^>]*>(.*?)</textarea>', page, re.S)
    assert match, "no reply box"
    return html.unescape(match.group(1))


async def test_a_photo_with_text_arrives_as_a_thumbnail_with_its_size_reserved(
    app, client, people
) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert 'enctype="multipart/form-data"' in page
        assert re.search(r'<label for="reply-files">[^<]+</label>', page)
        assert '<input type="file" id="reply-files" name="files" multiple>' in page
        r = await reply(c, conv["id"], "the new shelf", [("shelf.png", PHOTO, "image/png")])
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith(f"/messages/{conv['id']}#m")
    [message] = await history(client, people.free, conv["id"])
    [photo] = message["attachments"]
    assert message["body"] == "the new shelf" and (photo["width"], photo["height"]) == (640, 480)

    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        item = message_html(page, message["id"])
        link = re.search(r'<a class="photo" href="([^"]+)"[^>]*><img ([^>]+)>', item)
        assert link, item
        assert link.group(1) == photo["url"] == f"{API}/media/{photo['id']}"
        assert f'src="{photo["thumbnail_url"]}"' in link.group(2)
        assert 'width="320" height="240"' in link.group(2)
        assert 'alt="Photo: shelf.png"' in link.group(2)
        assert "the new shelf" in item
        # the links work for the recipient, with the page's cookie
        thumb = await c.get(photo["thumbnail_url"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
        full = await c.get(photo["url"])
        assert full.status_code == 200 and full.headers["content-type"] == "image/png"
    nothing_left_in_incoming = incoming_files(app)
    assert nothing_left_in_incoming == []


async def test_a_pdf_shows_as_a_card_and_a_file_alone_has_no_empty_bubble(
    app, client, people
) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        r = await reply(c, conv["id"], "", [("reading list.pdf", samples.PDF, "application/pdf")])
        assert r.status_code == 303, r.text
    [message] = await history(client, people.free, conv["id"])
    [doc] = message["attachments"]
    assert message["body"] == ""
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        item = message_html(page, message["id"])
        assert '<span class="file-icon" data-kind="pdf" aria-hidden="true">PDF</span>' in item
        assert '<span class="file-name">reading list.pdf</span>' in item
        size = human_size(len(samples.PDF))
        assert f'<span class="file-size">{size}</span>' in item and size.endswith("bytes")
        assert re.search(rf'<a class="file-download[^"]*" href="{doc["url"]}" download>', item)
        assert 'class="bubble"' not in item and "<img" not in item
        r = await c.get(doc["url"])
        assert r.content == samples.PDF and r.headers["content-disposition"].startswith("attach")


async def test_sizes_read_as_people_say_them() -> None:
    assert human_size(1) == "1 byte" and human_size(812) == "812 bytes"
    assert human_size(1_258_291) == "1.2 MB" and human_size(348_160) == "340 KB"
    assert human_size(3 * 1024**3) == "3.0 GB"


async def test_a_hostile_file_is_refused_in_place_with_the_text_kept(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        r = await reply(
            c, conv["id"], "look <at> this", [("cute.jpg", samples.HTML_AS_JPEG, "image/jpeg")]
        )
        assert r.status_code == 415
        assert 'id="reply-error" role="alert">Files of this type' in r.text
        assert "Choose the files again" in r.text
        assert draft_of(r.text) == "look <at> this"
        assert 'id="messages"' in r.text  # the thread, not an error page
        # a good photo first and the hostile file after: neither is kept
        r = await reply(
            c,
            conv["id"],
            "two files",
            [("ok.png", PHOTO, "image/png"), ("bad.jpg", samples.HTML_AS_JPEG, "image/jpeg")],
        )
        assert r.status_code == 415 and draft_of(r.text) == "two files"
    assert await history(client, people.free, conv["id"]) == []
    assert await attachment_rows(app) == 0
    nothing_left(app)


async def test_a_form_without_the_right_token_is_refused_and_keeps_nothing(
    app, client, people
) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        for token in ("", "not-the-token"):
            r = await reply(
                c, conv["id"], "forged", [("shelf.png", PHOTO, "image/png")], token=token
            )
            assert r.status_code == 403 and "did not come from this site" in r.text
            assert "forged" not in r.text
        # the token comes last, after a file too large: refused for the token, not the size
        app.state.settings.media_max_bytes_privileged = 2000
        r = await c.post(
            f"/messages/{conv['id']}/send",
            files=[
                ("body", (None, b"forged")),
                ("files", ("big.png", samples.png(300, 300) + b"\0" * 4000, "image/png")),
                ("csrf_token", (None, b"wrong")),
            ],
        )
        assert r.status_code == 413 and "forged" not in r.text  # no token arrived to check
    assert await history(client, people.free, conv["id"]) == []
    assert await attachment_rows(app) == 0
    nothing_left(app)


async def test_a_file_past_the_limit_is_refused_in_place(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    app.state.settings.media_max_bytes_free = 2000
    async with signed_in(app, "free") as c:
        big = samples.png(300, 300) + b"\0" * 4000
        r = await reply(c, conv["id"], "the big one", [("big.png", big, "image/png")])
        assert r.status_code == 413
        assert "Files can be at most 2000 bytes." in r.text
        assert draft_of(r.text) == "the big one"
        # a file within the limit still goes through
        r = await reply(c, conv["id"], "small", [("small.png", samples.png(), "image/png")])
        assert r.status_code == 303, r.text
    assert [m["body"] for m in await history(client, people.free, conv["id"])] == ["small"]
    assert incoming_files(app) == []


async def test_eleven_files_are_too_many(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        files = [(f"p{i}.png", samples.png(), "image/png") for i in range(11)]
        r = await reply(c, conv["id"], "a whole album", files)
        assert r.status_code == 400 and "At most 10 files at a time." in r.text
        assert draft_of(r.text) == "a whole album"
    assert await attachment_rows(app) == 0
    nothing_left(app)


async def test_a_text_only_reply_still_works_in_both_encodings(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        r = await reply(c, conv["id"], "multipart, no file chosen", [])
        assert r.status_code == 303, r.text
        page = await c.get(f"/messages/{conv['id']}")
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={"body": "url-encoded", "csrf_token": csrf_of(page)},
        )
        assert r.status_code == 303
        r = await reply(c, conv["id"], "", [])
        assert r.status_code == 422 and "must not be empty" in r.text.lower()
    bodies = [m["body"] for m in await history(client, people.free, conv["id"])]
    assert bodies == ["multipart, no file chosen", "url-encoded"]
    assert await attachment_rows(app) == 0


async def test_uploads_made_by_the_script_are_sent_as_attachment_ids(app, client, people) -> None:
    """The script uploads through the JSON API with the page's cookie and its CSRF header,
    then the form names the uploads; either encoding carries them."""
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        token = csrf_of(await c.get(f"/messages/{conv['id']}"))
        refused = await c.post(f"{API}/media/upload", files={"file": ("a.png", PHOTO, "image/png")})
        assert refused.status_code == 403  # the cookie alone is not enough
        ids = []
        for name in ("a.png", "b.png", "c.png"):
            r = await c.post(
                f"{API}/media/upload",
                files={"file": (name, PHOTO, "image/png")},
                data={"conversation_id": str(conv["id"])},
                headers={"X-CSRF-Token": token},
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = await c.post(
            f"/messages/{conv['id']}/send",
            data={"csrf_token": token, "body": "", "attachment_ids": [str(i) for i in ids[:2]]},
        )
        assert r.status_code == 303, r.text
        r = await reply(
            c,
            conv["id"],
            "and a PDF",
            [("list.pdf", samples.PDF, "application/pdf")],
            token=token,
            attachment_ids=[str(ids[2])],
        )
        assert r.status_code == 303, r.text
        # someone else's upload cannot be named
        r = await reply(c, conv["id"], "sneaky", [], token=token, attachment_ids=["999999"])
        assert r.status_code == 422 and draft_of(r.text) == "sneaky"
    first, second = await history(client, people.free, conv["id"])
    assert [a["id"] for a in first["attachments"]] == ids[:2]
    assert [a["file_name"] for a in second["attachments"]] == ["c.png", "list.pdf"]


async def test_the_same_form_sent_twice_is_one_message_with_its_files_once(
    app, client, people
) -> None:
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        token = csrf_of(await c.get(f"/messages/{conv['id']}"))
        for _ in range(2):
            r = await reply(
                c,
                conv["id"],
                "once",
                [("shelf.png", PHOTO, "image/png")],
                token=token,
                client_msg_id="same-form",
            )
            assert r.status_code == 303
    [message] = await history(client, people.free, conv["id"])
    assert len(message["attachments"]) == 1
    # the repeat's upload is gone: its row marked removed, its files deleted
    assert len(stored_files(app)) == 2  # the one photo and its thumbnail


async def test_a_removed_attachment_says_so(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    r = await client.post(
        f"{API}/media/upload",
        files={"file": ("gone.png", PHOTO, "image/png")},
        headers=people.priv.headers,
    )
    photo = r.json()
    await send(client, people.priv, conv["id"], "soon gone", attachment_ids=[photo["id"]])
    await client.delete(f"{API}/media/{photo['id']}", headers=people.priv.headers)
    async with signed_in(app, "free") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "Attachment removed" in page and "soon gone" in page
        assert photo["url"] not in page


async def test_the_list_says_what_a_message_of_files_holds(app, client, people) -> None:
    def upload(who: Person, name: str, content: bytes) -> Any:
        return client.post(
            f"{API}/media/upload", files={"file": (name, content, "x")}, headers=who.headers
        )

    async def send_files(who: Person, to: Person, body: str, *files: tuple[str, bytes]) -> None:
        conv = await dm(client, to, who) if who.tier == "free" else await dm(client, who, to)
        ids = [(await upload(who, name, content)).json()["id"] for name, content in files]
        r = await send(client, who, conv["id"], body, attachment_ids=ids)
        assert r.status_code == 201, r.text

    await send_files(people.priv, people.free, "", ("a.png", PHOTO))
    await send_files(people.plus, people.free, "", ("list.pdf", samples.PDF))
    await send_files(people.manager, people.free, "", *[(f"{i}.png", PHOTO) for i in range(3)])
    await send_files(people.admin, people.free, "see attached", ("b.png", PHOTO))
    await send_files(people.free2, people.priv, "", ("c.png", PHOTO), ("d.pdf", samples.PDF))
    async with signed_in(app, "free") as c:
        page = (await c.get("/messages")).text
        previews = re.findall(r'<span class="convrow-preview">(.*?)</span>\n', page)
        previews = [re.sub(r"<svg.*?</svg>", "[clip]", p) for p in previews]
        assert previews[:4] == [
            '[clip]<span class="sr-only">With files: </span>see attached',
            "3 photos",
            "File: list.pdf",
            "Photo",
        ]
    async with signed_in(app, "free2") as c:  # a free member replying in one started for them
        page = (await c.get("/messages")).text
        assert '<span class="convrow-preview">You: 2 files</span>' in page


async def test_a_large_url_encoded_body_is_still_refused(app, client, people) -> None:
    """Only a multipart body is streamed by the route; any other is held to 1 MB."""
    conv = await dm(client, people.priv, people.free)
    async with signed_in(app, "priv") as c:
        token = csrf_of(await c.get(f"/messages/{conv['id']}"))
        r = await c.post(
            f"/messages/{conv['id']}/send",
            content=f"csrf_token={token}&body=".encode() + b"x" * 1_100_000,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 413
        # while a multipart body past 1 MB is the route's to read: a 1.5 MB PDF goes through
        big_pdf = samples.PDF + b"%" + b"x" * 1_500_000 + b"\n"
        r = await reply(c, conv["id"], "", [("big.pdf", big_pdf, "application/pdf")], token=token)
        assert r.status_code == 303, r.text
    [message] = await history(client, people.free, conv["id"])
    assert message["attachments"][0]["size"] == len(big_pdf)


async def test_the_sender_removes_a_file_from_the_page(app, client, people) -> None:
    from tests.web.support import post_form

    conv = await dm(client, people.priv, people.free)
    r = await client.post(
        f"{API}/media/upload",
        files={"file": ("oops.png", PHOTO, "image/png")},
        headers=people.priv.headers,
    )
    photo = r.json()
    sent = (
        await send(client, people.priv, conv["id"], "wrong one", attachment_ids=[photo["id"]])
    ).json()
    async with signed_in(app, "free") as c:  # the recipient has no such action
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "Remove oops.png" not in page
    async with signed_in(app, "priv") as c:
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert f'action="/messages/{conv["id"]}/files/{photo["id"]}/remove"' in page
        r = await post_form(
            c, f"/messages/{conv['id']}", f"/messages/{conv['id']}/files/{photo['id']}/remove", {}
        )
        assert r.status_code == 303
        page = (await c.get(f"/messages/{conv['id']}")).text
        assert "Attachment removed" in message_html(page, sent["id"])
    assert stored_files(app) == []
