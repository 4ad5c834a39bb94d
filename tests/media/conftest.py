"""The media stores under test: every behaviour test runs against the local folder and against
a real S3 server (SeaweedFS, see tests/support/s3.py), each test on fresh, empty storage."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pigeon.core.blobs import MediaStore
from pigeon.media.s3 import S3Store
from pigeon.media.storage import LocalStore
from tests.support.s3 import S3Server

BUCKET = "pigeon-media-tests"
BIG = 64 * 1024 * 1024


def s3_store(server: S3Server, bucket: str = BUCKET, prefix: str | None = None) -> S3Store:
    """A store on the test server; a fresh prefix per test keeps tests apart in one bucket."""
    return S3Store(
        bucket=bucket,
        prefix=prefix if prefix is not None else f"t-{uuid.uuid4().hex[:12]}",
        endpoint=server.endpoint,
        region=server.region,
        access_key=server.access_key,
        secret_key=server.secret_key,
    )


@pytest.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MediaStore]:
    media: MediaStore
    if request.param == "local":
        media = LocalStore(tmp_path / "media")
    else:
        media = s3_store(request.getfixturevalue("s3_server"))
    await media.check()
    yield media
    await media.close()


def write_random(path: Path, size: int) -> Path:
    with path.open("wb") as out:
        for offset in range(0, size, 1024 * 1024):
            out.write(os.urandom(min(1024 * 1024, size - offset)))
    return path


@pytest.fixture(scope="session")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random(tmp_path_factory.mktemp("big") / "big.bin", BIG)
