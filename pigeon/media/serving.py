"""Sending a stored file to a client, after the caller's access check.

Files never change once stored, so a key is its own validator (`ETag`, `If-None-Match` → 304).
One byte range at a time (`Range: bytes=a-b`, `a-`, `-n` → 206); a range past the end → 416.
Whatever the file, the response cannot run script in the site's origin: its type is the one
decided from its bytes, `nosniff`, a sandboxing Content-Security-Policy, and only raster
images are shown inline; everything else is a download (`Content-Disposition: attachment`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pigeon.core.blobs import MediaMissing, MediaStore
from pigeon.core.errors import AppError, NotFound, error_response
from pigeon.media.storage import content_disposition

# a range past 19 digits is no range a file here has: ignored, like any malformed one
_RANGE = re.compile(r"bytes=([0-9]{0,19})-([0-9]{0,19})")
SAFETY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def etag_of(key: str) -> str:
    return '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) of a single satisfiable range; None for no (or an ignorable) Range
    header. Raises AppError 416 for a range past the end."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None  # several ranges or another unit: the whole file, as RFC 9110 allows
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last n bytes
        n = int(last)
        if n == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> AppError:
    return AppError(
        "That range is outside the file.",
        code="range_not_satisfiable",
        status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )


@dataclasses.dataclass(frozen=True)
class Served:
    """What to send for a file, once the caller has checked who asks: where it is and how to
    present it."""

    key: str
    content_type: str
    file_name: str
    size: int | None  # None: ask the store
    inline: bool


async def serve(request: Request, store: MediaStore, found: Served) -> Response:
    """The file as a response: whole, a range of it, or 304."""
    key, content_type, file_name = found.key, found.content_type, found.file_name
    size, inline = found.size, found.inline
    etag = etag_of(key)
    headers = {
        **SAFETY_HEADERS,
        "ETag": etag,
        "Cache-Control": "private, max-age=86400",
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(file_name, inline=inline),
    }
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if size is None:
        size = await store.size(key)
        if size is None:
            raise NotFound("No such file.", code="attachment_not_found")
    media_type = f"{content_type}; charset=utf-8" if content_type == "text/plain" else content_type
    if_range = request.headers.get("if-range")
    wanted = (
        byte_range(request.headers.get("range"), size) if not if_range or if_range == etag else None
    )
    if size == 0:
        return Response(b"", headers=headers, media_type=media_type)
    start, end = wanted if wanted is not None else (0, size - 1)
    try:  # before the status: a file gone from the store is a 404, not a cut-off 200
        chunks = await store.stream(key, start, end)
    except MediaMissing:
        return error_response(404, "attachment_not_found", "This file is no longer stored.")

    headers["Content-Length"] = str(end - start + 1)
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        return StreamingResponse(chunks, 206, headers=headers, media_type=media_type)
    return StreamingResponse(chunks, 200, headers=headers, media_type=media_type)
