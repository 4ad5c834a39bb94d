"""Checking and preparing one uploaded file before it is stored.

What a file is comes from its bytes (`sniff`), never from its name or the type a client sent,
and that type must be one the server accepts. Images are then decoded and written afresh, so
what is stored holds their pixels and nothing else the uploader's device put in the file: no
EXIF (with its GPS position and camera serial), no XMP, no comments, no colour profile, and no
bytes crafted to be read as something else. Other files are stored as uploaded.

| check | error | status, code |
| --- | --- | --- |
| the file has bytes | UnsupportedFile | 415 empty_file |
| its bytes are a known type, and one of `allowed` | UnsupportedFile | 415 unsupported_type |
| an image's pixels, over all frames, within `max_pixels` | ImageTooLarge | 413 image_too_large |
| an animation has at most MAX_FRAMES frames | ImageTooLarge | 413 image_too_large |
| an image decodes, in the format its bytes announce | UnsupportedFile | 415 unsupported_type |

Pixels are counted from the image's header (an animation's frame by frame) before they are
decoded.

Text that starts like markup (`<`, after a BOM and blanks) is not text/plain: HTML or SVG
stored as text is one sniffing reader away from running its scripts.

Pillow's own decompression-bomb limit (a process-wide setting) is a second line behind the
pixel check: its error, and its warning wherever a warnings filter makes that an error, are
refused as ImageTooLarge too. No warnings filter is changed here: `warnings.catch_warnings`
swaps process-wide state and is not safe in the worker threads this runs in.

HEIF photos (`image/heic`, what phones take by default) are stored as JPEG, which every
browser shows: libheif applies the photo's own rotation as it decodes.

Everything here blocks on disk and CPU; callers run it in a worker thread.
"""

from __future__ import annotations

import codecs
import io
import os
import re
import tempfile
import zipfile
from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, ImageSequence

from pigeon.core.errors import AppError

HEAD_BYTES = 64 * 1024  # what sniffing reads; zip archives are read through their directory
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "image/heic"})

JPEG_QUALITY = 85
WEBP_QUALITY = 85
THUMBNAIL_QUALITY = 75
# each frame of an animation costs its own work whatever its size: a bound beside the pixels
MAX_FRAMES = 1000

_PILLOW_FORMATS = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
}
# EXIF orientation: how the stored pixels are turned to stand upright
_ORIENTATIONS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}
# PNG: zlib level 1, which on photo-like content is several times faster than the default 6
_SAVE_OPTIONS: dict[str, dict[str, Any]] = {
    "JPEG": {"quality": JPEG_QUALITY},
    "PNG": {"compress_level": 1},
    "WEBP": {"quality": WEBP_QUALITY},
    "GIF": {},
}


class UnsupportedFile(AppError):
    status = 415
    code = "unsupported_type"
    message = "Files of this type are not accepted."


class ImageTooLarge(AppError):
    status = 413
    code = "image_too_large"
    message = "That image has too many pixels."


@dataclass(frozen=True)
class Processed:
    """What to store for one upload, and what the app records about it."""

    content_type: str
    path: Path  # images: a fresh encoding in the work folder; other files: the upload itself
    size: int
    width: int | None = None
    height: int | None = None
    thumbnail: Path | None = None  # images: a WebP at most thumb_px on its longest side


def process(
    upload: Path, workdir: Path, *, allowed: Collection[str], max_pixels: int, thumb_px: int
) -> Processed:
    """Check and prepare one upload; files it writes go to `workdir` for the caller to remove."""
    size = upload.stat().st_size
    if size == 0:
        raise UnsupportedFile("That file is empty.", code="empty_file")
    content_type = sniff(upload)
    if content_type is None:
        raise UnsupportedFile("Files of this type are not accepted.")
    if content_type not in allowed:
        raise UnsupportedFile(f"Files of this type ({content_type}) are not accepted.")
    if content_type not in IMAGE_TYPES:
        return Processed(content_type, upload, size)
    if content_type == "image/heic":
        content_type = "image/jpeg"
        stored, thumbnail, width, height = _reencode_heif(upload, max_pixels, thumb_px)
    else:
        stored, thumbnail, width, height = _reencode(
            upload, _PILLOW_FORMATS[content_type], max_pixels=max_pixels, thumb_px=thumb_px
        )
    path = _write(workdir, stored, _SUFFIXES[_PILLOW_FORMATS[content_type]])
    try:
        thumbnail_path = _write(workdir, thumbnail, ".webp")
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Processed(content_type, path, len(stored), width, height, thumbnail_path)


# --- what a file is ---------------------------------------------------------------------------

_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"fLaC", "audio/flac"),
    (b"ID3", "audio/mpeg"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav"}
# the first packet of an Ogg stream names its codec; Theora (video) is not audio
_OGG_AUDIO = (b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   ")
_MP4_AUDIO_BRANDS = frozenset({b"M4A ", b"M4B "})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})  # the same container, a codec not read here
_OOXML = (
    ("word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_ODF = frozenset(
    {
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.presentation",
    }
)
_MARKUP = re.compile(r"[\s\ufeff]*<")


def sniff(path: Path) -> str | None:
    """The file's type decided from its bytes (magic numbers), never its name or a client's
    header; None when unknown."""
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
        whole = not file.read(1)
    if not head:
        return None
    found = _sniff_head(head)
    if found is None and head.startswith(b"PK\x03\x04"):
        return _sniff_zip(path)
    if found is None and _is_text(head, whole=whole):
        return "text/plain"
    return found


def _sniff_head(head: bytes) -> str | None:
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return content_type
    if head.startswith(b"RIFF"):
        return _RIFF.get(head[8:12])
    if head.startswith(b"OggS") and len(head) > 27:
        packet = head[27 + head[26] :]
        return "audio/ogg" if packet.startswith(_OGG_AUDIO) else None
    if head[4:8] == b"ftyp":
        box_end = min(int.from_bytes(head[:4], "big"), len(head))
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, box_end - 3, 4)}
        if brands & _MP4_AUDIO_BRANDS:
            return "audio/mp4"
        if brands & _HEIF_BRANDS and not brands & _AVIF_BRANDS:
            return "image/heic"
        return None
    if _is_mpeg_audio_frame(head[:4]):
        return "audio/mpeg"
    return None


def _is_mpeg_audio_frame(header: bytes) -> bool:
    """An MPEG audio frame header (an MP3 without an ID3 tag): the 11-bit sync, then no field
    holding a value the standard reserves (version, layer, bitrate, sample rate, emphasis)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate, sample_rate = header[2] >> 4, (header[2] >> 2) & 3
    return (
        version != 1
        and layer != 0
        and bitrate not in (0, 15)
        and sample_rate != 3
        and (header[3] & 3 != 2)
    )


def _sniff_zip(path: Path) -> str | None:
    """An office document, told by the archive's directory and, for OpenDocument, its small
    `mimetype` entry; nothing is extracted. Macro-enabled OOXML is a different type."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            names = [entry.filename for entry in entries]
            first = entries[0] if entries else None
            if first is not None and first.filename == "mimetype" and first.file_size <= 128:
                declared = archive.read(first).decode("ascii").strip()
                return declared if declared in _ODF else None
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError):
        return None
    if "[Content_Types].xml" not in names or any(n.endswith("vbaProject.bin") for n in names):
        return None
    for prefix, content_type in _OOXML:
        if any(name.startswith(prefix) for name in names):
            return content_type
    return None


def _is_text(head: bytes, *, whole: bool) -> bool:
    """UTF-8 without NUL bytes, not starting like markup. A sample cut from a longer file may
    end inside a character."""
    if b"\x00" in head:
        return False
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return False
    return not _MARKUP.match(text)


# --- images -----------------------------------------------------------------------------------


@contextmanager
def _reading_image(max_pixels: int) -> Iterator[None]:
    """Pillow's ways of saying it cannot (or, for its bomb limit, will not) read the bytes, as
    the errors a client sees."""
    try:
        yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(max_pixels) from exc
    except (OSError, SyntaxError, ValueError, EOFError, RuntimeError) as exc:
        raise UnsupportedFile("That image could not be read.") from exc


def _too_large(max_pixels: int) -> ImageTooLarge:
    return ImageTooLarge(
        f"Images may have at most {max_pixels:,} pixels (width × height, over all the frames"
        " of an animation)."
    )


def _check_pixels(pixels: int, max_pixels: int) -> None:
    if pixels > max_pixels:
        raise _too_large(max_pixels)


def _reencode(
    upload: Path, fmt: str, *, max_pixels: int, thumb_px: int
) -> tuple[bytes, bytes, int, int]:
    """The image decoded and encoded afresh in its own format, and its thumbnail, as bytes
    with the stored width and height. All of it happens in memory, so every error here is
    about the upload, not the disk."""
    with _reading_image(max_pixels), Image.open(upload, formats=[fmt]) as image:
        _check_pixels(image.width * image.height, max_pixels)
        # a JPEG's further images (MPO: a stereo pair, a depth or HDR gain map) are not shown
        if fmt != "JPEG" and getattr(image, "is_animated", False):
            return _reencode_animation(image, fmt, max_pixels, thumb_px)
        return _reencode_still(image, fmt, thumb_px)


def _reencode_heif(upload: Path, max_pixels: int, thumb_px: int) -> tuple[bytes, bytes, int, int]:
    """A HEIF photo as a JPEG. Its size is read from the header first; libheif turns it as the
    photo says (its EXIF orientation comes back as 1), and nothing of its metadata is kept."""
    import pillow_heif  # loaded by the first HEIF photo, not by every process

    with _reading_image(max_pixels):
        heif = pillow_heif.open_heif(upload, convert_hdr_to_8bit=True)
        _check_pixels(heif.size[0] * heif.size[1], max_pixels)
        image = heif.to_pillow()
    image.info = {}
    return _reencode_still(image, "JPEG", thumb_px)


def _reencode_still(image: Image.Image, fmt: str, thumb_px: int) -> tuple[bytes, bytes, int, int]:
    """Decode once, then make the thumbnail in a second thread while the stored copy is turned
    upright and encoded: Pillow lets go of the GIL while it works, so on a photo the thumbnail
    adds no time. Both only read the decoded pixels, and the thumbnail needs nothing from the
    `info` that is emptied before encoding (its source holds any transparency as alpha)."""
    image.load()
    turn = _ORIENTATIONS.get(image.getexif().get(ExifTags.Base.Orientation, 1))
    source = _thumbnail_source(image)
    with ThreadPoolExecutor(max_workers=1) as pool:
        thumbnail = pool.submit(_thumbnail, source, thumb_px, turn)
        still = _fit_mode(image if turn is None else image.transpose(turn), fmt)
        options = dict(_SAVE_OPTIONS[fmt])
        if fmt in ("PNG", "GIF") and "transparency" in still.info:
            options["transparency"] = still.info["transparency"]
        still.info = {}
        return _encode(still, fmt, **options), thumbnail.result(), still.width, still.height


def _reencode_animation(
    image: Image.Image, fmt: str, max_pixels: int, thumb_px: int
) -> tuple[bytes, bytes, int, int]:
    """Every frame, as Pillow composes it, with its duration and the loop count; nothing else
    of the file. Frames are counted, and their pixels added up, as they come, each before it
    is decoded: counting a GIF's frames up front would read the whole file first."""
    pictures: list[Image.Image] = []
    durations: list[int] = []
    pixels = 0
    for index, frame in enumerate(ImageSequence.Iterator(image)):
        if index == MAX_FRAMES:
            raise ImageTooLarge(f"Animations may have at most {MAX_FRAMES:,} frames.")
        pixels += frame.width * frame.height  # a GIF frame may widen the canvas
        _check_pixels(pixels, max_pixels)
        picture = frame.copy()
        if picture.has_transparency_data and picture.mode != "RGBA":
            picture = picture.convert("RGBA")
        durations.append(int(frame.info.get("duration", 0)))
        picture.info = {}
        pictures.append(picture)
    first = pictures[0]
    options: dict[str, Any] = {"save_all": True, "append_images": pictures[1:]}
    options["duration"] = durations
    if fmt == "GIF":
        options["disposal"] = 2  # every frame is whole: clear it before drawing the next
    if "loop" in image.info:
        options["loop"] = image.info["loop"]
    options |= _SAVE_OPTIONS[fmt]
    stored = _encode(first, fmt, **options)
    return stored, _thumbnail(_thumbnail_source(first), thumb_px), first.width, first.height


def _fit_mode(image: Image.Image, fmt: str) -> Image.Image:
    """The image in a mode its format stores without loss of what shows (transparency kept)."""
    if fmt == "JPEG" and image.mode not in ("L", "RGB"):
        return image.convert("RGB")
    if fmt == "WEBP" and image.mode not in ("RGB", "RGBA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image


def _thumbnail_source(image: Image.Image) -> Image.Image:
    """The image in a mode that resizes well (grey or colour, with or without alpha) and needs
    nothing from its `info`: a transparent colour or palette entry becomes an alpha channel."""
    if image.mode.startswith("I;16"):  # 16-bit grey: scaled to 8 bits, where convert() clips
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode in ("RGB", "RGBA", "L", "LA") and "transparency" not in image.info:
        return image
    target = "RGBA" if image.has_transparency_data else "RGB"
    if image.mode == "P":
        image = image.copy()  # converting to RGBA writes the transparency into the palette
    return image.convert(target)


def _thumbnail(source: Image.Image, thumb_px: int, turn: Image.Transpose | None = None) -> bytes:
    """A WebP at most `thumb_px` on its longest side (never enlarged), turned as the stored
    image is. Shrinking first by whole factors (`reducing_gap`) averages blocks of pixels
    cheaply before the finer resize."""
    scale = min(1.0, thumb_px / max(source.size))
    size = (max(1, round(source.width * scale)), max(1, round(source.height * scale)))
    small = source.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)
    if turn is not None:
        small = small.transpose(turn)
    target = "RGBA" if small.mode in ("RGBA", "LA") else "RGB"
    small = small if small.mode == target else small.convert(target)
    small.info = {}
    return _encode(small, "WEBP", quality=THUMBNAIL_QUALITY)


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _write(workdir: Path, data: bytes, suffix: str) -> Path:
    """A new file with a name no other upload can have."""
    fd, name = tempfile.mkstemp(dir=workdir, suffix=suffix)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path
