"""Files to upload, made on the spot: good ones, and the hostile ones an outside client tries."""

from __future__ import annotations

import io
import zlib

from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def jpeg_with_gps(width: int = 64, height: int = 48) -> bytes:
    """A photo that says where it was taken, turned on its side (orientation 6)."""
    img = Image.new("RGB", (width, height), (200, 40, 40))
    for x in range(width // 2):  # a left half of another colour, to see the rotation
        for y in range(height):
            img.putpixel((x, y), (40, 40, 200))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (52.0, 22.0, 1.5)
    gps[3], gps[4] = "E", (4.0, 53.0, 2.5)
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def heic_with_gps(width: int = 64, height: int = 48) -> bytes:
    """What a phone takes by default: HEIF, on its side, with where it was taken."""
    import pillow_heif

    img = Image.new("RGB", (width, height), (200, 40, 40))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps[1], gps[2] = "N", (52.0, 22.0, 1.5)
    out = io.BytesIO()
    pillow_heif.from_pillow(img).save(out, exif=exif.tobytes(), quality=80)
    return out.getvalue()


def png(width: int = 40, height: int = 30) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 60)).save(out, "PNG")
    return out.getvalue()


def png_bomb(side: int = 30_000) -> bytes:
    """A tiny file that claims a huge picture (side x side, 1 bit per pixel): the header is
    all a server should read before refusing it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    row = b"\x00" + b"\x00" * ((side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(200)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


HTML_AS_JPEG = b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"
SVG_WITH_SCRIPT = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
    b"<script>alert(1)</script><circle r='4'/></svg>"
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)
