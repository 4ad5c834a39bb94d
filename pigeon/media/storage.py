"""Where attachment bytes are kept: a folder on this machine, or an S3-compatible bucket.

Both stores answer the same `MediaStore` protocol, chosen once by `open_store(settings)`:
`PIGEON_MEDIA_S3_BUCKET` set means S3, otherwise files under `data_dir/media`.

- Keys are opaque names made by `new_key()` ("ab/cd/<32 hex>", optionally with a short suffix
  such as ".thumb.webp"). Every method checks the key against that one pattern first and raises
  ValueError otherwise, so no caller-supplied text ever becomes a path or an object name.
- `save` returns only once the bytes are durable: locally the file is written beside its final
  name, fsynced, renamed over it and the folder fsynced; on S3 the upload has completed. Neither
  reads the whole file into memory (local: 1 MiB copies; S3: s3transfer's multipart upload).
- `await store.stream(key, start, end)` raises MediaMissing before any byte is promised, then
  returns the chunks, read one at a time in a worker thread as they are consumed. Locally the
  file is opened, sized and its first chunk read in one trip to a worker thread (a small file
  is then already closed); the S3 response is opened only when iteration starts (after a
  HEAD). Close an iterator left halfway (`aclose`) to close its file at once.
- `keys(older_than)` feeds the orphan sweep. Locally it also deletes the temporary files that
  a save interrupted by a crash left behind, once they are older than the cutoff; they are not
  keys, so they are never returned.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import os
import re
import secrets
import shutil
import time
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import quote

from pigeon.core.blobs import MediaMissing, MediaStore, MediaStoreUnavailable
from pigeon.settings import Settings

if TYPE_CHECKING:
    pass

KEY = re.compile(r"[a-z0-9]{2}/[a-z0-9]{2}/[a-f0-9]{32}(\.[a-z0-9.]{1,16})?")
TEMP = re.compile(r"\..+\.tmp")  # a key's file name never starts with a dot
CHUNK = 256 * 1024
COPY_CHUNK = 1024 * 1024
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # the longest S3 signature version 4 allows


def new_key() -> str:
    """A fresh random key; the first four hex digits spread files over 65,536 folders."""
    token = secrets.token_hex(16)
    return f"{token[:2]}/{token[2:4]}/{token}"


def check_key(key: str) -> str:
    if not isinstance(key, str) or not KEY.fullmatch(key):
        raise ValueError(f"not a media key: {key!r}")
    return key


def byte_span(start: int, end: int | None, size: int) -> tuple[int, int]:
    """Offsets [start, stop) for an inclusive range clamped to the size; empty past the end."""
    if start < 0 or (end is not None and end < start):
        raise ValueError(f"bad byte range: {start}-{end}")
    stop = size if end is None else min(end + 1, size)
    return start, max(start, stop)


def content_disposition(file_name: str, *, inline: bool) -> str:
    """A Content-Disposition header for a name chosen by a user: quotes, slashes and control
    characters removed, an ASCII fallback, and the full name in RFC 5987 form."""
    kind = "inline" if inline else "attachment"
    name = "".join(c for c in file_name if c.isprintable() and c not in '"\\/').strip()[:200]
    name = name or "file"
    plain = "".join(
        c if c.isascii() else "_"
        for c in unicodedata.normalize("NFKD", name)
        if not unicodedata.combining(c)
    )
    return f"{kind}; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


def open_store(settings: Settings) -> MediaStore:
    if settings.media_s3_bucket:
        from pigeon.media.s3 import S3Store  # boto3 is loaded only where it is used

        return S3Store(
            bucket=settings.media_s3_bucket,
            prefix=settings.media_s3_prefix,
            endpoint=settings.media_s3_endpoint,
            region=settings.media_s3_region,
            access_key=settings.media_s3_access_key,
            secret_key=settings.media_s3_secret_key,
        )
    return LocalStore(settings.media_dir)


def require_aware(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError("older_than must be timezone-aware")
    return moment.timestamp()


# -- a folder on this machine ---------------------------------------------------------------


class LocalStore:
    """Files under one folder (0o700), one file per key (0o600)."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def save(self, key: str, source: Path, content_type: str) -> int:
        path = self.path(key)
        try:
            return await asyncio.to_thread(_write_durably, self.root, path, source)
        except OSError as error:  # a full or read-only disk: the store, not the request
            raise MediaStoreUnavailable(f"could not write {path}: {error}") from error

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = CHUNK
    ) -> AsyncIterator[bytes]:
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        # opening, sizing and the first read in one trip to a worker thread: a thumbnail or
        # any other small file is served with one
        file, first, stop = await asyncio.to_thread(
            _open_span, self.path(key), key, start, end, chunk
        )
        return _file_chunks(file, first, stop, chunk)

    async def size(self, key: str) -> int | None:
        path = self.path(key)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def keys(self, older_than: dt.datetime) -> list[str]:
        return await asyncio.to_thread(_old_files, self.root, require_aware(older_than))

    async def presigned_url(
        self, key: str, *, seconds: int, file_name: str, content_type: str, inline: bool
    ) -> str | None:
        check_key(key)
        return None

    async def check(self) -> None:
        try:
            await asyncio.to_thread(_probe_folder, self.root)
        except OSError as error:
            raise MediaStoreUnavailable(
                f"media folder {self.root} cannot be written: {error}"
            ) from error

    async def close(self) -> None:
        return None


def _make_folders(root: Path, folder: Path) -> list[Path]:
    """Create the root and the key's folders as needed; returns those it created."""
    parts = folder.relative_to(root).parts
    created = []
    for level in [root, *(root.joinpath(*parts[: depth + 1]) for depth in range(len(parts)))]:
        try:
            level.mkdir(mode=0o700, parents=True)
            created.append(level)
        except FileExistsError:
            pass
    return created


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(root: Path, path: Path, source: Path) -> int:
    """Put `source` at `path` so that a crash leaves either the old file or the new one: a
    second name for the same bytes where both are on one file system (uploads arrive under
    the data folder), a copy otherwise; synced to disk before it takes its name."""
    created = _make_folders(root, path.parent)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            if source.stat().st_nlink != 1:  # named elsewhere already: its own copy
                raise OSError(errno.EMLINK, "already linked")
            os.link(source, temp)
            os.chmod(temp, 0o600)
            os.utime(temp)  # written now, as far as the sweep is concerned
            with temp.open("rb") as linked:
                os.fsync(linked.fileno())
                size = os.fstat(linked.fileno()).st_size
        except OSError as error:
            if error.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            with source.open("rb") as src, open(_create_private(temp), "wb") as out:
                shutil.copyfileobj(src, out, COPY_CHUNK)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    for folder in {path.parent, *(made.parent for made in created)}:
        _fsync_folder(folder)
    return size


def _create_private(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _open_span(
    path: Path, key: str, start: int, end: int | None, chunk: int
) -> tuple[BinaryIO | None, bytes, int]:
    """(the open file, or None once all is read; the first chunk; where the span stops)."""
    try:
        file = path.open("rb")
    except FileNotFoundError:
        raise MediaMissing(key) from None
    try:
        start, stop = byte_span(start, end, os.fstat(file.fileno()).st_size)
        file.seek(start)
        first = file.read(min(chunk, stop - start)) if stop > start else b""
    except BaseException:
        file.close()
        raise
    if start + len(first) >= stop or not first:
        file.close()
        return None, first, stop
    return file, first, stop


async def _file_chunks(
    file: BinaryIO | None, first: bytes, stop: int, chunk: int
) -> AsyncIterator[bytes]:
    try:
        if first:
            yield first
        if file is None:
            return
        position = file.tell()
        while position < stop:
            data = await asyncio.to_thread(file.read, min(chunk, stop - position))
            if not data:
                break
            position += len(data)
            yield data
    finally:
        if file is not None:
            file.close()


def _old_files(root: Path, cutoff: float) -> list[str]:
    """Keys last written before the cutoff; stale temporary files (older than the cutoff and
    than an hour: never an upload still being written) are deleted on the way."""
    found = []
    stale = min(cutoff, time.time() - 3600)
    for folder, _, names in os.walk(root):
        for name in names:
            path = Path(folder, name)
            try:
                written = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if written >= cutoff:
                continue
            key = path.relative_to(root).as_posix()
            if TEMP.fullmatch(name):
                if written < stale:
                    path.unlink(missing_ok=True)
            elif KEY.fullmatch(key):
                found.append(key)
    return sorted(found)


def _probe_folder(root: Path) -> None:
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    probe = root / f".check.{secrets.token_hex(4)}.tmp"
    try:
        with open(_create_private(probe), "wb") as out:
            out.write(b"ok")
            os.fsync(out.fileno())
    finally:
        probe.unlink(missing_ok=True)
