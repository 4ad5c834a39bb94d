"""Where files live: a small interface the app holds (`Runtime.media`), with a local folder and
an S3-compatible store behind it (`pigeon.media.storage`).

Keys are opaque names the store hands out (`new_key`); files are written whole before anything
names them and never change after, so a key's bytes can be cached and compared by key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

from pigeon.core.errors import AppError


class MediaMissing(Exception):
    """The store holds nothing under that key."""


class MediaStoreUnavailable(AppError):
    """The store cannot be reached or written. Clients get a 503 that says so; the message
    given (with the store's own words) is for the log and `check`."""

    status = 503
    code = "media_unavailable"
    message = "Files cannot be reached right now; try again shortly."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__()
        self.detail = detail or self.message

    def __str__(self) -> str:
        return self.detail


class MediaStore(Protocol):
    name: str  # "local" or "s3", for logs and the health check

    async def save(self, key: str, source: Path, content_type: str) -> int:
        """Store the file at `source` under `key`, durably, before returning its size."""
        ...

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = 256 * 1024
    ) -> AsyncIterator[bytes]:
        """Await it for the chunks, so that MediaMissing comes before any byte is promised.
        `end` is inclusive and clamped to the size; a start past the end gives no chunks."""
        ...

    async def size(self, key: str) -> int | None: ...

    async def delete(self, key: str) -> None:
        """Remove `key`; nothing there is fine."""
        ...

    async def keys(self, older_than: dt.datetime) -> list[str]:
        """Every key last written before `older_than` (aware), for the orphan sweep."""
        ...

    async def presigned_url(
        self, key: str, *, seconds: int, file_name: str, content_type: str, inline: bool
    ) -> str | None:
        """A short-lived URL to fetch the file directly, where the store offers one."""
        ...

    async def check(self) -> None:
        """Raise MediaStoreUnavailable, saying why, when the store cannot be written."""
        ...

    async def close(self) -> None: ...
