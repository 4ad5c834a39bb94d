"""Files in a real browser: chosen, pasted or dropped, each uploading at once with its progress,
cancelled or retried, sent and arriving live; photos opening full size; the same without
JavaScript; the phone layout in light and dark. Screenshots go to PIGEON_SCREENSHOT_DIR."""

from __future__ import annotations

import base64
import io
import re
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.media import samples
from tests.web.conftest import (
    DESKTOP,
    PHONE,
    Server,
    api_client,
    assert_no_reload,
    expect,
    mark_no_reload,
    shot,
)

pytestmark = pytest.mark.browser


def picture(width: int, height: int, hue: int) -> bytes:
    """Something like a photo (sky, ground, a sun), so that the screenshots show real crops."""
    image = Image.new("HSV", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        sky = y < height * 0.62
        value = 235 - y * 90 // height if sky else 150 - (y - height) * 40 // height
        draw.line([(0, y), (width, y)], fill=(hue if sky else (hue + 80) % 256, 110, value))
    r = min(width, height) // 7
    draw.ellipse(
        [width * 0.68, height * 0.16, width * 0.68 + 2 * r, height * 0.16 + 2 * r],
        fill=(30, 160, 255),
    )
    out = io.BytesIO()
    image.convert("RGB").save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "shelf.png": picture(640, 480, 140),
        "reading list.pdf": samples.PDF,
        "cute.jpg": samples.HTML_AS_JPEG,
    }
    for name, content in made.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in made}


def conversation(server: Server, starter: str, other: str) -> int:
    """A direct conversation the other person has accepted (no message request in the way)."""
    with closing(api_client(server, starter)) as api:
        r = api.post("/conversations", json={"participant_ids": [server.ids[other]]})
        assert r.status_code in (200, 201), r.text
        conv_id = int(r.json()["id"])
    with closing(api_client(server, other)) as api:
        assert api.post(f"/conversations/{conv_id}/accept").status_code == 200
    return conv_id


def send_with_files(server: Server, who: str, conv_id: int, body: str, *files: Any) -> None:
    with closing(api_client(server, who)) as api:
        ids = []
        for name, content in files:
            r = api.post("/media/upload", files={"file": (name, content, "x")})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
        r = api.post(
            f"/conversations/{conv_id}/messages", json={"body": body, "attachment_ids": ids}
        )
        assert r.status_code == 201, r.text


def wait_loaded(page: Any, image: Any) -> None:
    """Wait until the browser has decoded the image (it fails on a broken one)."""
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
    )


def test_files_upload_at_once_are_sent_and_arrive_live(
    open_as: Any, server: Server, files: dict[str, Path]
) -> None:
    conv_id = conversation(server, "pia", "finn")
    pia, finn = open_as("pia"), open_as("finn")
    pia.goto(f"/messages/{conv_id}")
    finn.goto(f"/messages/{conv_id}")
    mark_no_reload(pia)
    mark_no_reload(finn)

    attach = pia.get_by_role("button", name="Attach photos or files")
    expect(attach).to_be_visible()
    attach.focus()
    expect(attach).to_be_focused()
    expect(pia.locator("#files-row")).to_be_hidden()  # the script's button stands in for it
    pia.locator("#reply-files").set_input_files([files["shelf.png"], files["reading list.pdf"]])
    items = pia.locator("#pending .pending-item")
    expect(items).to_have_count(2)
    photo, doc = items.nth(0), items.nth(1)
    expect(photo.locator("img.pending-thumb")).to_have_attribute("src", re.compile(r"^blob:"))
    expect(doc.locator(".pending-name")).to_have_text("reading list.pdf")
    expect(doc.locator(".file-icon")).to_have_text("PDF")
    for item in (photo, doc):
        expect(item).to_have_attribute("data-state", "done")
        assert item.locator("progress").evaluate("p => p.value") == 100
    expect(doc.locator(".pending-size")).to_have_text(f"{len(samples.PDF)} bytes · ready")
    assert pia.locator("#reply-files").evaluate("input => input.files.length") == 0

    pia.get_by_label("Write a message").fill("The shelf, and the list")
    pia.get_by_role("button", name="Send").click()
    mine = pia.locator("#messages .msg.mine").last
    expect(mine).to_contain_text("The shelf, and the list")
    expect(mine.locator(".file-name")).to_have_text("reading list.pdf")
    expect(pia.locator("#pending")).to_be_hidden()
    expect(items).to_have_count(0)

    # Finn's open page: the thumbnail arrives without a reload, its size reserved
    arrived = finn.locator("#messages .msg").last
    thumb = arrived.locator(".photos img")
    expect(thumb).to_have_attribute("src", re.compile(r"^/api/v1/media/\d+/thumbnail$"))
    assert (thumb.get_attribute("width"), thumb.get_attribute("height")) == ("320", "240")
    expect(
        arrived.get_by_role("link", name=re.compile("Download reading list.pdf"))
    ).to_be_visible()
    wait_loaded(finn, thumb)
    box = thumb.bounding_box()
    assert box and abs(box["width"] / box["height"] - 4 / 3) < 0.02
    assert_no_reload(finn)

    # the photo at full size, in a viewer that Escape and the close button both close
    viewer = finn.locator("#lightbox")
    arrived.locator("a.photo").click()
    expect(viewer).to_be_visible()
    full = viewer.locator("img.lightbox-img")
    expect(full).to_have_attribute("src", re.compile(r"/api/v1/media/\d+$"))
    finn.wait_for_function("img => img.naturalWidth === 640", arg=full.element_handle())
    expect(viewer.get_by_role("button", name="Close")).to_be_focused()
    finn.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    arrived.locator("a.photo").click()
    expect(viewer).to_be_visible()
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()
    assert_no_reload(finn)
    assert_no_reload(pia)


PASTE = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const box = document.getElementById("reply-body");
  const init = { clipboardData: data, bubbles: true, cancelable: true };
  box.dispatchEvent(new ClipboardEvent("paste", init));
}"""

DROP = """([name, type, b64]) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type }));
  const thread = document.getElementById("thread");
  for (const kind of ["dragenter", "dragover", "drop"]) {
    const init = { dataTransfer: data, bubbles: true, cancelable: true };
    thread.dispatchEvent(new DragEvent(kind, init));
  }
}"""


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def test_paste_drop_cancel_and_retry(open_as: Any, server: Server, files: dict[str, Path]) -> None:
    conv_id = conversation(server, "dora", "finn")
    dora = open_as("dora")
    dora.goto(f"/messages/{conv_id}")
    items = dora.locator("#pending .pending-item")

    dora.evaluate(PASTE, ["image.png", "image/png", b64(samples.png(50, 40))])
    expect(items).to_have_count(1)
    expect(items.first).to_have_attribute("data-state", "done")
    expect(items.first.locator("img.pending-thumb")).to_be_visible()
    dora.evaluate(DROP, ["notes.pdf", "application/pdf", b64(samples.PDF)])
    expect(items).to_have_count(2)
    expect(items.nth(1)).to_have_attribute("data-state", "done")
    expect(items.nth(1).locator(".pending-name")).to_have_text("notes.pdf")

    # cancelling a finished upload takes it off the list and off the server
    pasted_id = items.first.locator("input[name=attachment_ids]").input_value()
    items.first.get_by_role("button", name="Remove image.png").click()
    expect(items).to_have_count(1)
    with closing(api_client(server, "dora")) as api:
        expect_gone = api.get(f"/media/{pasted_id}")
        assert expect_gone.status_code == 404

    # a file the server refuses: its reason, a retry; the send waits until it is dealt with
    dora.locator("#reply-files").set_input_files(files["cute.jpg"])
    refused = items.nth(1)
    expect(refused).to_have_attribute("data-state", "failed")
    expect(refused.locator(".pending-error")).to_contain_text("Files of this type")
    expect(refused.get_by_role("button", name="Retry uploading cute.jpg")).to_be_visible()
    dora.get_by_role("button", name="Send").click()
    expect(dora.locator("#reply-error")).to_have_text(
        "Some files did not upload: retry them or remove them."
    )
    refused.get_by_role("button", name="Remove cute.jpg").click()
    expect(items).to_have_count(1)

    # no connection: the upload fails, and a retry once it is back succeeds
    dora.context.set_offline(True)
    dora.locator("#reply-files").set_input_files(files["shelf.png"])
    offline = items.nth(1)
    expect(offline).to_have_attribute("data-state", "failed")
    expect(offline.locator(".pending-error")).to_have_text("No connection right now.")
    dora.context.set_offline(False)
    offline.get_by_role("button", name="Retry uploading shelf.png").click()
    expect(offline).to_have_attribute("data-state", "done")

    # an upload in flight: Send waits; cancelling it aborts the request
    held: list[Any] = []
    dora.route("**/api/v1/media/upload", lambda route: held.append(route))
    dora.locator("#reply-files").set_input_files(files["reading list.pdf"])
    expect(items).to_have_count(3)
    expect(items.nth(2)).to_have_attribute("data-state", "uploading")
    expect(dora.get_by_role("button", name="Send")).to_be_disabled()
    items.nth(2).get_by_role("button", name="Remove reading list.pdf").click()
    expect(items).to_have_count(2)
    expect(dora.get_by_role("button", name="Send")).to_be_enabled()
    dora.unroute("**/api/v1/media/upload")
    assert len(held) == 1

    dora.get_by_role("button", name="Send").click()  # files alone, no text
    mine = dora.locator("#messages .msg.mine").last
    expect(mine.locator(".file-name")).to_have_text("notes.pdf")
    expect(mine.locator(".photos img")).to_have_count(1)
    expect(mine.locator(".bubble")).to_have_count(0)
    expect(items).to_have_count(0)


def test_phone_layout_in_light_and_dark(
    open_as: Any, server: Server, files: dict[str, Path]
) -> None:
    conv_id = conversation(server, "pia", "dora")
    long_name = "the-complete-autumn-catalogue-with-every-title-and-its-price-2026.pdf"
    send_with_files(
        server,
        "pia",
        conv_id,
        "Three photos of the window and the catalogue",
        *[(f"window-{i}.png", picture(480, 640, 20 + 60 * i)) for i in range(3)],
        (long_name, samples.PDF),
    )
    send_with_files(server, "pia", conv_id, "", ("cover.png", picture(640, 400, 150)))
    for dark in (False, True):
        page = open_as("dora", viewport=PHONE, dark=dark)
        page.goto(f"/messages/{conv_id}")
        last = page.locator("#messages .msg").last
        expect(last.locator(".photos img")).to_have_count(1)
        for image in page.locator("#messages .photos img").all():
            wait_loaded(page, image)
        page.locator("#reply-files").set_input_files(
            [files["shelf.png"], files["reading list.pdf"], files["shelf.png"]]
        )
        expect(page.locator("#pending .pending-item[data-state=done]")).to_have_count(3)
        width = page.evaluate("document.scrollingElement.scrollWidth")
        assert width <= PHONE["width"], f"horizontal scrolling at phone size: {width}px"
        card = page.locator("#messages .file").first.bounding_box()
        assert card and card["x"] >= 0 and card["x"] + card["width"] <= PHONE["width"]
        attach = page.get_by_role("button", name="Attach photos or files")
        expect(attach).to_be_in_viewport()
        box = attach.bounding_box()
        assert box and box["height"] >= 44 and box["y"] + box["height"] <= PHONE["height"]
        page.keyboard.press("Escape")
        shot(page, "attachments-mobile-dark" if dark else "attachments-mobile")
    desk = open_as("dora", viewport=DESKTOP)
    desk.goto(f"/messages/{conv_id}")
    expect(desk.locator("#messages .msg").last.locator(".photos img")).to_have_count(1)
    for image in desk.locator("#messages .photos img").all():
        wait_loaded(desk, image)
    shot(desk, "attachments-desktop")
    desk.goto("/messages")
    expect(desk.locator(".convrow", has_text="Pia Pictures")).to_contain_text("Photo")


def test_a_photo_without_javascript(open_as: Any, server: Server, files: dict[str, Path]) -> None:
    conv_id = conversation(server, "nell", "finn")
    nell = open_as("nell", js=False, viewport=PHONE)
    nell.goto(f"/messages/{conv_id}")
    expect(nell.get_by_role("button", name="Attach photos or files")).to_be_hidden()
    expect(nell.get_by_label("Add photos or files")).to_be_in_viewport()
    nell.get_by_label("Add photos or files").set_input_files(files["shelf.png"])
    nell.get_by_label("Write a message").fill("No script, still a photo")
    nell.get_by_role("button", name="Send").click()
    mine = nell.locator("#messages .msg.mine").last
    expect(mine).to_contain_text("No script, still a photo")
    thumb = mine.locator(".photos img")
    expect(thumb).to_have_attribute("src", re.compile(r"/thumbnail$"))
    wait_loaded(nell, thumb)

    # a refused file: said in place, the text kept
    nell.get_by_label("Add photos or files").set_input_files(files["cute.jpg"])
    nell.get_by_label("Write a message").fill("and this one")
    nell.get_by_role("button", name="Send").click()
    expect(nell.locator("#reply-error")).to_contain_text("Files of this type")
    expect(nell.get_by_label("Write a message")).to_have_value("and this one")
    assert nell.evaluate("document.scrollingElement.scrollWidth") <= PHONE["width"]
    shot(nell, "attachments-mobile-nojs")

    # the photo's link opens the image itself
    nell.goto(f"/messages/{conv_id}")
    nell.locator("#messages a.photo").last.click()
    nell.wait_for_url(re.compile(r"/api/v1/media/\d+$"))
    assert nell.locator("img").count() == 1  # the browser's own image view
