"""What an upload becomes: the type its bytes show, never its name; images written afresh with
nothing of the camera's in them, upright, with a small WebP thumbnail; everything else stored
as it came; and the files that must not get in (markup, bombs, broken or unknown bytes)."""

from __future__ import annotations

import io
import resource
import struct
import zipfile
import zlib
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, ImageSequence, ImageStat, PngImagePlugin

from pigeon.media import processing
from pigeon.media.processing import ImageTooLarge, Processed, UnsupportedFile, process, sniff
from pigeon.settings import DEFAULT_MEDIA_TYPES

THUMB_PX = 320
RED, BLUE, GREEN = (220, 20, 20), (20, 20, 220), (20, 200, 20)
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
# what a phone writes into a photo, each marker something the stored file must not contain
PRIVATE = (b"PigeonCam", b"SN-0042", b"WGS-84", b"GPS", b"taken at home", b"Exif\x00\x00")


def run(
    upload: Path,
    *,
    allowed: Collection[str] = DEFAULT_MEDIA_TYPES,
    max_pixels: int = 40_000_000,
    thumb_px: int = THUMB_PX,
) -> Processed:
    workdir = upload.parent / "work"
    workdir.mkdir(exist_ok=True)
    return process(upload, workdir, allowed=allowed, max_pixels=max_pixels, thumb_px=thumb_px)


def save(image: Image.Image, path: Path, fmt: str, **options: object) -> Path:
    image.save(path, fmt, **options)
    return path


def halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue: which way up an image is stored shows at a glance."""
    image = Image.new("RGB", (width, height), BLUE)
    image.paste(RED, (0, 0, width // 2, height))
    return image


def camera_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PigeonCam"
    exif[ExifTags.Base.BodySerialNumber] = "SN-0042"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    gps[ExifTags.GPS.GPSMapDatum] = "WGS-84"
    return exif


def close(pixel: object, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=False))


def check_thumbnail(result: Processed, size: tuple[int, int]) -> Image.Image:
    assert result.thumbnail is not None and result.thumbnail.parent == result.path.parent
    with Image.open(result.thumbnail) as thumbnail:
        assert thumbnail.format == "WEBP"
        assert thumbnail.size == size and max(size) <= THUMB_PX
        thumbnail.load()
        return thumbnail.copy()


# --- images: what is stored ---------------------------------------------------------------


def test_a_photo_is_stored_upright_without_anything_the_camera_wrote(tmp_path: Path) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    upload = save(
        halves(400, 300),
        tmp_path / "IMG_0001.jpg",
        "JPEG",
        exif=camera_exif(orientation=6),
        xmp=b"<x:xmpmeta><exif:GPSLatitude>51,30.2N</exif:GPSLatitude></x:xmpmeta>",
        comment=b"taken at home",
        icc_profile=icc,
    )
    uploaded = upload.read_bytes()
    assert all(marker in uploaded for marker in PRIVATE)

    result = run(upload)

    stored = result.path.read_bytes()
    assert result.content_type == "image/jpeg" and result.path != upload
    assert stored != uploaded and result.size == len(stored)
    assert [marker for marker in PRIVATE if marker in stored] == []
    with Image.open(result.path) as image:
        assert image.format == "JPEG"
        assert len(image.getexif()) == 0
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(image.info)
        # orientation 6: turned a quarter clockwise, the left (red) half is now the top
        assert image.size == (result.width, result.height) == (300, 400)
        assert close(image.getpixel((150, 20)), RED) and close(image.getpixel((150, 380)), BLUE)
    thumbnail = check_thumbnail(result, (240, 320))
    assert close(thumbnail.getpixel((120, 10)), RED)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_other_image_formats_lose_their_metadata_too(tmp_path: Path, fmt: str) -> None:
    image = halves(200, 100)
    options: dict[str, object] = {"exif": camera_exif()}
    if fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "taken at home")
        options["pnginfo"] = text
    elif fmt == "WEBP":
        options["xmp"] = b"<x:xmpmeta>taken at home, WGS-84</x:xmpmeta>"
    else:
        options = {"comment": b"taken at home by PigeonCam SN-0042"}
    upload = save(image, tmp_path / f"picture.{fmt.lower()}", fmt, **options)
    assert b"taken at home" in upload.read_bytes()

    result = run(upload)

    stored = result.path.read_bytes()
    assert [marker for marker in PRIVATE if marker in stored] == []
    with Image.open(result.path) as stored_image:
        assert stored_image.format == fmt and stored_image.size == (200, 100)
        assert len(stored_image.getexif()) == 0
        assert close(stored_image.convert("RGB").getpixel((20, 50)), RED)
    check_thumbnail(result, (200, 100))


@pytest.mark.parametrize(
    ("fmt", "mode"), [("PNG", "RGBA"), ("PNG", "P"), ("WEBP", "RGBA"), ("GIF", "P")]
)
def test_transparent_images_stay_transparent(tmp_path: Path, fmt: str, mode: str) -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    image.paste(RED + (255,), (16, 16, 48, 48))
    options: dict[str, object] = {}
    if mode == "P":
        image = image.convert("P")  # the transparent colour becomes a palette entry
        options["transparency"] = image.getpixel((0, 0))
    upload = save(image, tmp_path / f"sticker.{fmt.lower()}", fmt, **options)

    result = run(upload)

    with Image.open(result.path) as stored:
        rgba = stored.convert("RGBA")
        assert rgba.getpixel((2, 2))[3] == 0  # type: ignore[index]
        assert close(rgba.getpixel((32, 32)), RED + (255,))
    thumbnail = check_thumbnail(result, (64, 64))
    assert thumbnail.mode == "RGBA" and thumbnail.getpixel((2, 2))[3] == 0  # type: ignore[index]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_an_animation_keeps_its_frames_and_timing(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (64, 48), colour) for colour in (RED, GREEN, BLUE)]
    upload = save(
        frames[0],
        tmp_path / f"wave.{fmt.lower()}",
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
    )

    result = run(upload)

    with Image.open(result.path) as stored:
        assert stored.format == fmt and getattr(stored, "n_frames", 1) == 3
        assert stored.info.get("loop") == 0
        shown = [
            (f.convert("RGB").getpixel((32, 24)), f.info["duration"])
            for f in ImageSequence.Iterator(stored)
        ]
    assert [duration for _, duration in shown] == [100, 200, 300]
    assert all(
        close(pixel, colour) for (pixel, _), colour in zip(shown, (RED, GREEN, BLUE), strict=True)
    )
    assert (result.width, result.height) == (64, 48)
    assert close(check_thumbnail(result, (64, 48)).getpixel((32, 24)), RED)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_a_transparent_animation_shows_each_frame_as_drawn(tmp_path: Path, fmt: str) -> None:
    """What one frame covered must not linger in the next one's transparent parts."""
    frames = []
    for (left, right), colour in (((0, 32), RED), ((32, 64), BLUE)):
        frame = Image.new("RGBA", (64, 48), (0, 0, 0, 0))
        frame.paste(colour + (128,), (left, 0, right, 48))  # a sticker's soft edge
        frame.paste(colour + (255,), (left + 2, 2, right - 2, 46))
        frames.append(frame)
    upload = save(
        frames[0],
        tmp_path / f"blink.{fmt.lower()}",
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=100,
        disposal=2,
        comment=b"taken at home",
    )

    result = run(upload)

    assert b"taken at home" not in result.path.read_bytes()
    with Image.open(result.path) as stored:
        shown = [frame.convert("RGBA") for frame in ImageSequence.Iterator(stored)]
    assert len(shown) == 2
    in_left, in_right = (10, 24), (50, 24)
    assert close(shown[0].getpixel(in_left), RED + (255,))
    assert shown[0].getpixel(in_right)[3] == 0  # type: ignore[index]
    assert shown[1].getpixel(in_left)[3] == 0  # type: ignore[index]
    assert close(shown[1].getpixel(in_right), BLUE + (255,))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF"])
def test_thumbnails_are_small_webp_images(tmp_path: Path, fmt: str) -> None:
    big = run(save(halves(1000, 400), tmp_path / f"wide.{fmt.lower()}", fmt))
    check_thumbnail(big, (320, 128))
    tall = run(save(halves(300, 900), tmp_path / f"tall.{fmt.lower()}", fmt))
    check_thumbnail(tall, (107, 320))
    small = run(save(halves(100, 50), tmp_path / f"small.{fmt.lower()}", fmt))
    check_thumbnail(small, (100, 50))  # never enlarged


def grey_ramp() -> Image.Image:
    return Image.linear_gradient("L").resize((256, 128))


@pytest.mark.parametrize(
    ("fmt", "image"),
    [
        pytest.param("JPEG", grey_ramp(), id="grey jpeg"),
        pytest.param(
            "JPEG",
            Image.merge("CMYK", [grey_ramp()] * 3 + [Image.new("L", (256, 128))]),
            id="cmyk jpeg",
        ),
        pytest.param(
            "PNG",
            grey_ramp().convert("I").point(lambda v: v * 257).convert("I;16"),
            id="16-bit png",
        ),
        pytest.param("PNG", grey_ramp().convert("1"), id="1-bit png"),
        pytest.param(
            "PNG",
            Image.merge("LA", [grey_ramp(), Image.new("L", (256, 128), 255)]),
            id="grey+alpha png",
        ),
    ],
)
def test_less_common_kinds_of_image_keep_their_look(
    tmp_path: Path, fmt: str, image: Image.Image
) -> None:
    """Each is a ramp from black to white (CMYK: from white to black), mid-grey on average."""
    result = run(save(image, tmp_path / f"scan.{fmt.lower()}", fmt))
    with Image.open(result.path) as stored:
        assert stored.format == fmt and stored.size == (256, 128)
    thumbnail = check_thumbnail(result, (256, 128))
    assert abs(ImageStat.Stat(thumbnail.convert("L")).mean[0] - 127.5) < 8


def test_a_photo_with_a_second_image_inside_keeps_the_one_shown(tmp_path: Path) -> None:
    """Phones add a depth or HDR gain map to a JPEG as a second image (MPO); viewers show the
    first, and that is the one stored."""
    upload = save(
        halves(400, 300),
        tmp_path / "portrait.jpg",
        "MPO",
        save_all=True,
        append_images=[Image.new("RGB", (200, 150))],
    )
    result = run(upload)
    with Image.open(result.path) as stored:
        assert stored.format == "JPEG" and stored.size == (400, 300)
        assert close(stored.getpixel((20, 150)), RED)
    check_thumbnail(result, (320, 240))


def test_the_type_comes_from_the_bytes_not_the_name(tmp_path: Path) -> None:
    upload = save(halves(40, 30), tmp_path / "holiday.jpg", "PNG")
    result = run(upload)
    assert result.content_type == "image/png" and result.path.suffix == ".png"


def test_each_result_has_its_own_files(tmp_path: Path) -> None:
    upload = save(halves(40, 30), tmp_path / "a.png", "PNG")
    first, second = run(upload), run(upload)
    files = {first.path, first.thumbnail, second.path, second.thumbnail}
    assert len(files) == 4 and all(path and path.parent == tmp_path / "work" for path in files)


def test_uploads_processed_at_the_same_time_do_not_mix(tmp_path: Path) -> None:
    """The app runs each upload in its own worker thread."""
    photo = save(halves(400, 300), tmp_path / "photo.jpg", "JPEG", exif=camera_exif(6))
    sticker = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    sticker.paste(BLUE + (255,), (16, 16, 48, 48))
    paletted = sticker.convert("P")
    sticker_png = save(
        paletted, tmp_path / "sticker.png", "PNG", transparency=paletted.getpixel((0, 0))
    )
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, [photo, sticker_png] * 4))
    for result in results[::2]:
        with Image.open(result.path) as image:
            assert image.size == (300, 400) and close(image.getpixel((150, 20)), RED)
    for result in results[1::2]:
        with Image.open(result.path) as image:
            assert image.convert("RGBA").getpixel((2, 2))[3] == 0  # type: ignore[index]
        assert check_thumbnail(result, (64, 64)).getpixel((2, 2))[3] == 0  # type: ignore[index]


# --- images: what is refused ----------------------------------------------------------------


def png_of_zeros(path: Path, side: int) -> Path:
    """A 1-bit PNG of `side` x `side` pixels in a few kilobytes: what a decompression bomb
    looks like. Written by hand, because Pillow would need the whole image in memory."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    row = bytes(1 + (side + 7) // 8)  # filter byte, then the row's bits
    compressor = zlib.compressobj(9)
    pixels = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


def test_a_decompression_bomb_is_refused_without_being_decoded(tmp_path: Path) -> None:
    upload = png_of_zeros(tmp_path / "bomb.png", 20_000)  # 400 megapixels
    assert upload.stat().st_size < 100_000
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB

    with pytest.raises(ImageTooLarge) as refused:
        run(upload)

    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert refused.value.status == 413 and refused.value.code == "image_too_large"
    assert "40,000,000 pixels" in refused.value.message
    assert peak_after - peak_before < 50 * 1024
    assert list((tmp_path / "work").iterdir()) == []


def test_the_pixel_limit_is_the_servers_setting(tmp_path: Path) -> None:
    upload = png_of_zeros(tmp_path / "scan.png", 2_000)  # 4 megapixels
    with pytest.raises(ImageTooLarge) as refused:
        run(upload, max_pixels=3_000_000)
    assert "3,000,000 pixels" in refused.value.message
    assert run(upload, max_pixels=4_000_000).width == 2_000


def test_an_animation_counts_the_pixels_of_all_its_frames(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (100, 100), (40 * index, 0, 0)) for index in range(5)]
    upload = save(frames[0], tmp_path / "long.gif", "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageTooLarge):
        run(upload, max_pixels=40_000)
    assert run(upload, max_pixels=50_000).content_type == "image/gif"


def test_an_animation_with_too_many_frames_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processing, "MAX_FRAMES", 4)
    frames = [Image.new("RGB", (8, 8), (40 * index, 0, 0)) for index in range(5)]
    five = save(frames[0], tmp_path / "five.gif", "GIF", save_all=True, append_images=frames[1:])
    four = save(frames[0], tmp_path / "four.gif", "GIF", save_all=True, append_images=frames[1:4])
    with pytest.raises(ImageTooLarge) as refused:
        run(five)
    assert refused.value.message == "Animations may have at most 4 frames."
    assert run(four).content_type == "image/gif"


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(jpeg_bytes(halves(400, 300))[:1500], id="truncated jpeg"),
        pytest.param(b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, id="jpeg magic then noise"),
        pytest.param(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 20, id="png magic then text"),
        pytest.param(b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(64), id="empty webp"),
    ],
)
def test_an_image_that_cannot_be_read_is_refused(tmp_path: Path, data: bytes) -> None:
    upload = tmp_path / "broken.jpg"
    upload.write_bytes(data)
    with pytest.raises(UnsupportedFile) as refused:
        run(upload)
    assert refused.value.status == 415 and refused.value.code == "unsupported_type"
    assert refused.value.message == "That image could not be read."
    assert list((tmp_path / "work").iterdir()) == []


# --- other files ----------------------------------------------------------------------------

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_a_pdf_is_stored_as_it_came(tmp_path: Path) -> None:
    upload = tmp_path / "minutes.pdf"
    upload.write_bytes(PDF)
    assert run(upload) == Processed("application/pdf", upload, len(PDF))


def test_utf8_text_is_plain_text(tmp_path: Path) -> None:
    upload = tmp_path / "notes"
    upload.write_text("Grüße aus Köln 🐦\nline two\n", encoding="utf-8")
    assert run(upload) == Processed("text/plain", upload, upload.stat().st_size)


def test_long_text_is_text_even_where_the_sample_cuts_a_character(tmp_path: Path) -> None:
    upload = tmp_path / "long.txt"
    upload.write_text("x" + "é" * 40_000, encoding="utf-8")  # byte 65,536 is inside an é
    assert sniff(upload) == "text/plain"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"caf\xe9 au lait", id="latin-1"),
        pytest.param(b"text\x00with a NUL", id="nul byte"),
        pytest.param("é".encode()[:1], id="a cut character with nothing after"),
    ],
)
def test_bytes_that_are_not_utf8_text_are_not_text(tmp_path: Path, data: bytes) -> None:
    upload = tmp_path / "notes.txt"
    upload.write_bytes(data)
    assert sniff(upload) is None


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("x.jpg", b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"),
        ("notes.txt", b"\xef\xbb\xbf \r\n\t<HTML><img src=x onerror=alert(1)>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
        ("logo.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>'),
        ("readme.txt", b"  <script>document.cookie</script>"),
    ],
)
def test_markup_is_refused_whatever_its_name(tmp_path: Path, name: str, data: bytes) -> None:
    upload = tmp_path / name
    upload.write_bytes(data)
    assert sniff(upload) is None
    with pytest.raises(UnsupportedFile) as refused:
        run(upload)
    assert refused.value.code == "unsupported_type"
    assert refused.value.message == "Files of this type are not accepted."


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    upload = tmp_path / "empty.jpg"
    upload.write_bytes(b"")
    with pytest.raises(UnsupportedFile) as refused:
        run(upload)
    assert refused.value.status == 415 and refused.value.code == "empty_file"
    assert refused.value.message == "That file is empty."


def test_a_type_the_server_does_not_accept_is_refused(tmp_path: Path) -> None:
    upload = tmp_path / "minutes.pdf"
    upload.write_bytes(PDF)
    with pytest.raises(UnsupportedFile) as refused:
        run(upload, allowed={"image/jpeg", "image/png"})
    assert refused.value.code == "unsupported_type"
    assert "application/pdf" in refused.value.message
    picture = save(halves(40, 30), tmp_path / "a.png", "PNG")
    with pytest.raises(UnsupportedFile):
        run(picture, allowed={"image/jpeg"})


def archive(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        for name, data in entries.items():
            method = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            zipped.writestr(name, data, compress_type=method)
    return path


OOXML_TYPES = b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/..."/>'


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ({"[Content_Types].xml": OOXML_TYPES, "word/document.xml": b"<w:document/>"}, DOCX),
        ({"[Content_Types].xml": OOXML_TYPES, "xl/workbook.xml": b"<workbook/>"}, XLSX),
        ({"[Content_Types].xml": OOXML_TYPES, "ppt/presentation.xml": b"<p/>"}, PPTX),
        ({"mimetype": ODT.encode(), "content.xml": b"<office:document-content/>"}, ODT),
        ({"mimetype": ODS.encode(), "content.xml": b"<office:document-content/>"}, ODS),
        ({"mimetype": ODP.encode(), "content.xml": b"<office:document-content/>"}, ODP),
    ],
)
def test_office_documents_are_known_by_what_the_archive_holds(
    tmp_path: Path, entries: dict[str, bytes], expected: str
) -> None:
    upload = archive(tmp_path / "report.zip", entries)
    assert run(upload) == Processed(expected, upload, upload.stat().st_size)


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param({"photos/a.txt": b"hello", "b.txt": b"world"}, id="plain zip"),
        pytest.param(
            {
                "[Content_Types].xml": OOXML_TYPES,
                "word/document.xml": b"<w:document/>",
                "word/vbaProject.bin": b"macro",
            },
            id="macro-enabled word",
        ),
        pytest.param(
            {"mimetype": b"application/vnd.oasis.opendocument.graphics", "content.xml": b"<x/>"},
            id="odf drawing",
        ),
        pytest.param(
            {"content.xml": b"<x/>", "mimetype": ODT.encode()}, id="odf mimetype not first"
        ),
    ],
)
def test_other_archives_are_refused(tmp_path: Path, entries: dict[str, bytes]) -> None:
    upload = archive(tmp_path / "report.docx", entries)
    assert sniff(upload) is None
    with pytest.raises(UnsupportedFile):
        run(upload)


def test_a_damaged_archive_is_refused(tmp_path: Path) -> None:
    upload = tmp_path / "report.docx"
    upload.write_bytes(b"PK\x03\x04" + bytes(200))
    assert sniff(upload) is None


def ogg(first_packet: bytes) -> bytes:
    """One Ogg page holding the stream's first packet, which names the codec."""
    return b"OggS\x00\x02" + bytes(20) + bytes([1, len(first_packet)]) + first_packet


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    body = major + bytes(4) + b"".join(compatible)
    return struct.pack(">I", 8 + len(body)) + b"ftyp" + body + bytes(32)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32), "audio/wav"),
        (ogg(b"OpusHead\x01\x02" + bytes(9)), "audio/ogg"),
        (ogg(b"\x01vorbis" + bytes(22)), "audio/ogg"),
        (b"fLaC\x00\x00\x00\x22" + bytes(34), "audio/flac"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(64), "audio/mpeg"),
        (b"\xff\xfb\x90\x64" + bytes(413), "audio/mpeg"),  # MPEG-1 layer III, 128 kbit/s
        (ftyp(b"M4A ", b"M4A ", b"mp42", b"isom"), "audio/mp4"),
        (ftyp(b"mp42", b"isom", b"M4A "), "audio/mp4"),
        (ogg(b"\x80theora" + bytes(34)), None),  # video
        (ftyp(b"isom", b"isom", b"avc1", b"mp41"), None),  # video
        (b"\xff\xf1\x50\x80" + bytes(64), None),  # AAC in ADTS, not MPEG audio layer I-III
        (b"\xff\xfb\xf0\x64" + bytes(64), None),  # bitrate index 15 is invalid
    ],
)
def test_voice_notes_and_music_are_known_by_their_first_bytes(
    tmp_path: Path, data: bytes, expected: str | None
) -> None:
    upload = tmp_path / "recording.bin"
    upload.write_bytes(data)
    assert sniff(upload) == expected
    if expected:
        assert run(upload) == Processed(expected, upload, len(data))


def test_a_truncated_heif_photo_and_an_avif_are_refused(tmp_path: Path) -> None:
    from tests.media.samples import heic_with_gps

    whole = heic_with_gps()
    cut = tmp_path / "cut.heic"
    cut.write_bytes(whole[: len(whole) // 2])
    assert sniff(cut) == "image/heic"
    with pytest.raises(UnsupportedFile, match="could not be read"):
        run(cut)
    avif = tmp_path / "x.avif"  # the same container around a codec not read here
    avif.write_bytes(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64)
    assert sniff(avif) is None
