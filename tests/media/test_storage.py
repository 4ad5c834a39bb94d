"""What the media stores promise, each promise checked on the local folder and on S3 alike."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import stat
import tracemalloc
from pathlib import Path

import httpx
import pytest

from pigeon.core.blobs import MediaMissing, MediaStore, MediaStoreUnavailable
from pigeon.media.s3 import S3Store
from pigeon.media.storage import LocalStore, content_disposition, new_key, open_store
from pigeon.settings import Settings
from tests.media.conftest import BIG, s3_store, write_random
from tests.support.s3 import S3Server, free_ports

HOUR = dt.timedelta(hours=1)
BAD_KEYS = [
    "../x",
    "/etc/passwd",
    "AB/..",
    "",
    "ab/cd",
    "ab/cd/" + "0" * 31,
    "ab/cd/" + "A" * 32,
    "ab/cd/" + "0" * 32 + "/../x",
    "ab/cd/../../" + "0" * 32,
    "ab/cd/" + "0" * 32 + ".thumb/x",
    "ab/cd/" + "0" * 32 + "\n",
    "ab\\cd\\" + "0" * 32,
]


async def read(store: MediaStore, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in await store.stream(key, start, end)])


async def test_save_then_stream_gives_back_the_same_bytes(
    store: MediaStore, tmp_path: Path
) -> None:
    source = write_random(tmp_path / "upload", 5 * 1024 * 1024 + 123)
    key = new_key()

    assert await store.save(key, source, "application/octet-stream") == source.stat().st_size
    assert await store.size(key) == source.stat().st_size
    chunks = [chunk async for chunk in await store.stream(key, chunk=100_000)]
    assert b"".join(chunks) == source.read_bytes()
    assert max(len(chunk) for chunk in chunks) <= 100_000


async def test_saving_again_replaces_the_bytes(store: MediaStore, tmp_path: Path) -> None:
    key = new_key()
    (tmp_path / "first").write_bytes(b"first version")
    (tmp_path / "second").write_bytes(b"second")
    await store.save(key, tmp_path / "first", "text/plain")
    await store.save(key, tmp_path / "second", "text/plain")
    assert await read(store, key) == b"second"


async def test_ranges(store: MediaStore, tmp_path: Path) -> None:
    content = bytes(range(256)) * 40
    (tmp_path / "file").write_bytes(content)
    key = new_key()
    await store.save(key, tmp_path / "file", "application/octet-stream")

    assert await read(store, key, 1000) == content[1000:]
    assert await read(store, key, 10, 20) == content[10:21]
    assert await read(store, key, len(content) - 1) == content[-1:]
    assert await read(store, key, len(content) - 1, len(content) - 1) == content[-1:]
    assert await read(store, key, 100, 10**9) == content[100:]
    assert await read(store, key, len(content)) == b""
    with pytest.raises(ValueError):
        await store.stream(key, 20, 10)
    with pytest.raises(ValueError):
        await store.stream(key, -1)


async def test_a_stream_can_be_left_halfway(store: MediaStore, tmp_path: Path) -> None:
    source = write_random(tmp_path / "upload", 1024 * 1024)
    key = new_key()
    await store.save(key, source, "application/octet-stream")

    chunks = await store.stream(key, chunk=64 * 1024)
    assert await anext(chunks) == source.read_bytes()[: 64 * 1024]
    await chunks.aclose()  # type: ignore[attr-defined]
    await store.delete(key)
    assert await store.size(key) is None


async def test_an_empty_file(store: MediaStore, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    key = new_key()
    assert await store.save(key, tmp_path / "empty", "text/plain") == 0
    assert await store.size(key) == 0
    assert await read(store, key) == b""


async def test_delete_is_idempotent_and_the_key_is_then_missing(
    store: MediaStore, tmp_path: Path
) -> None:
    (tmp_path / "file").write_bytes(b"hello")
    key = new_key()
    await store.save(key, tmp_path / "file", "text/plain")

    await store.delete(key)
    await store.delete(key)
    assert await store.size(key) is None
    with pytest.raises(MediaMissing):
        await store.stream(key)


async def test_a_key_never_saved_is_missing(store: MediaStore) -> None:
    key = new_key()
    assert await store.size(key) is None
    with pytest.raises(MediaMissing):
        await store.stream(key)
    await store.delete(key)


async def test_keys_lists_what_was_written_before_the_cutoff(
    store: MediaStore, tmp_path: Path
) -> None:
    (tmp_path / "file").write_bytes(b"hello")
    saved = sorted([new_key(), new_key() + ".thumb.webp"])
    for key in saved:
        await store.save(key, tmp_path / "file", "text/plain")
    now = dt.datetime.now(dt.UTC)

    assert await store.keys(older_than=now + HOUR) == saved
    assert await store.keys(older_than=now - HOUR) == []
    with pytest.raises(ValueError):
        await store.keys(older_than=dt.datetime.now())


async def test_anything_but_a_key_is_refused(store: MediaStore, tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"hello")
    for key in BAD_KEYS:
        with pytest.raises(ValueError):
            await store.save(key, tmp_path / "file", "text/plain")
        with pytest.raises(ValueError):
            await store.stream(key)
        with pytest.raises(ValueError):
            await store.size(key)
        with pytest.raises(ValueError):
            await store.delete(key)
        with pytest.raises(ValueError):
            await store.presigned_url(
                key, seconds=60, file_name="a", content_type="text/plain", inline=True
            )
    assert await store.keys(older_than=dt.datetime.now(dt.UTC) + HOUR) == []


def test_new_keys_are_valid_and_distinct() -> None:
    keys = {new_key() for _ in range(1000)}
    assert len(keys) == 1000
    for key in keys:
        LocalStore(Path("unused")).path(key)


async def test_save_streams_the_file_instead_of_reading_it_whole(
    store: MediaStore, big_file: Path
) -> None:
    key = new_key()
    tracemalloc.start()
    try:
        size = await store.save(key, big_file, "application/octet-stream")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == BIG
    assert peak < BIG // 4, f"saving {BIG >> 20} MiB allocated {peak >> 20} MiB at its peak"
    digest = hashlib.sha256()
    async for chunk in await store.stream(key, chunk=1024 * 1024):
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(big_file.read_bytes()).hexdigest()


async def test_check_fails_clearly_when_the_store_cannot_be_written(
    tmp_path: Path, s3_server: S3Server
) -> None:
    (tmp_path / "a-file").write_bytes(b"")
    with pytest.raises(MediaStoreUnavailable, match="media folder .* cannot be written"):
        await LocalStore(tmp_path / "a-file" / "media").check()

    closed = S3Server(f"http://127.0.0.1:{free_ports(1)[0]}", "key", "secret")
    with pytest.raises(MediaStoreUnavailable, match="S3 bucket 'pigeon-media-tests' at http"):
        await s3_store(closed).check()

    wrong = S3Server(s3_server.endpoint, s3_server.access_key, "not-the-secret")
    with pytest.raises(MediaStoreUnavailable, match="cannot be written"):
        await s3_store(wrong).check()


# -- the local folder ---------------------------------------------------------------------


async def test_local_files_are_private(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    (tmp_path / "file").write_bytes(b"hello")
    key = new_key()
    await store.save(key, tmp_path / "file", "text/plain")

    path = store.path(key)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for folder in (store.root, path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == [path.name]


async def test_local_keys_go_by_modification_time_and_clear_stale_temp_files(
    tmp_path: Path,
) -> None:
    store = LocalStore(tmp_path / "media")
    (tmp_path / "file").write_bytes(b"hello")
    old, recent = new_key(), new_key()
    for key in (old, recent):
        await store.save(key, tmp_path / "file", "text/plain")
    two_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).timestamp()
    os.utime(store.path(old), (two_days_ago, two_days_ago))
    stale_temp = store.path(old).with_name(f".{store.path(old).name}.0badf00d.tmp")
    fresh_temp = store.path(recent).with_name(f".{store.path(recent).name}.0badf00d.tmp")
    stale_temp.write_bytes(b"half")
    os.utime(stale_temp, (two_days_ago, two_days_ago))
    fresh_temp.write_bytes(b"half")
    stranger = store.root / "notes.txt"
    stranger.write_bytes(b"not ours")
    os.utime(stranger, (two_days_ago, two_days_ago))

    assert await store.keys(older_than=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) == [old]
    assert not stale_temp.exists()
    assert fresh_temp.exists() and stranger.exists()


async def test_local_store_gives_no_link(tmp_path: Path) -> None:
    url = await LocalStore(tmp_path).presigned_url(
        new_key(), seconds=60, file_name="a.txt", content_type="text/plain", inline=False
    )
    assert url is None


# -- S3 -----------------------------------------------------------------------------------


async def test_s3_link_serves_the_bytes_as_asked(tmp_path: Path, s3_server: S3Server) -> None:
    store = s3_store(s3_server)
    await store.check()
    (tmp_path / "file").write_bytes(b"%PDF- not really")
    key = new_key()
    await store.save(key, tmp_path / "file", "application/pdf")

    url = await store.presigned_url(
        key,
        seconds=60,
        file_name='Résumé "final".pdf',
        content_type="application/pdf",
        inline=False,
    )
    assert url is not None
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
        unsigned = await http.get(url.split("?")[0])
    assert answer.status_code == 200
    assert answer.content == b"%PDF- not really"
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == (
        "attachment; filename=\"Resume final.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20final.pdf"
    )
    assert unsigned.status_code == 403
    with pytest.raises(ValueError):
        await store.presigned_url(
            key, seconds=0, file_name="a", content_type="text/plain", inline=True
        )
    await store.close()


async def test_s3_check_creates_a_missing_bucket(s3_server: S3Server, tmp_path: Path) -> None:
    store = s3_store(s3_server, bucket="pigeon-fresh-bucket", prefix="")
    await store.check()
    (tmp_path / "file").write_bytes(b"hello")
    key = new_key()
    await store.save(key, tmp_path / "file", "text/plain")
    assert await store.keys(older_than=dt.datetime.now(dt.UTC) + HOUR) == [key]
    await store.close()


async def test_s3_keys_stay_under_the_prefix(s3_server: S3Server, tmp_path: Path) -> None:
    inside = s3_store(s3_server, prefix="/tenant/a/")
    beside = s3_store(s3_server, prefix="tenant/ab")
    await inside.check()
    (tmp_path / "file").write_bytes(b"hello")
    key = new_key()
    await inside.save(key, tmp_path / "file", "text/plain")

    assert inside.object_name(key) == f"tenant/a/{key}"
    assert await beside.size(key) is None
    assert await beside.keys(older_than=dt.datetime.now(dt.UTC) + HOUR) == []
    await inside.delete(key)
    await inside.close()
    await beside.close()


# -- choosing the store and naming the download ---------------------------------------------


def test_the_settings_choose_the_store(tmp_path: Path) -> None:
    local = open_store(Settings(data_dir=tmp_path, _env_file=None))  # type: ignore[call-arg]
    assert isinstance(local, LocalStore) and local.root == tmp_path / "media"
    s3 = open_store(
        Settings(  # type: ignore[call-arg]
            data_dir=tmp_path,
            media_s3_bucket="attachments",
            media_s3_endpoint="http://127.0.0.1:9",
            media_s3_prefix="pigeon",
            _env_file=None,
        )
    )
    assert isinstance(s3, S3Store) and (s3.name, s3.bucket, s3.prefix) == (
        "s3",
        "attachments",
        "pigeon/",
    )


@pytest.mark.parametrize(
    ("name", "inline", "header"),
    [
        ("photo.jpg", True, "inline; filename=\"photo.jpg\"; filename*=UTF-8''photo.jpg"),
        (
            'a"b\\c/d\r\ne.txt',
            False,
            "attachment; filename=\"abcde.txt\"; filename*=UTF-8''abcde.txt",
        ),
        (
            "日本.png",
            False,
            "attachment; filename=\"__.png\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png",
        ),
        ("\n", True, "inline; filename=\"file\"; filename*=UTF-8''file"),
    ],
)
def test_download_names_are_made_safe(name: str, inline: bool, header: str) -> None:
    assert content_disposition(name, inline=inline) == header
