"""Attachment bytes in an S3-compatible bucket (`PIGEON_MEDIA_S3_BUCKET`): the `MediaStore`
that `pigeon.media.storage.open_store` chooses when a bucket is set. Kept apart so that boto3
is loaded only by a server that uses it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, cast

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pigeon.core.blobs import MediaMissing, MediaStoreUnavailable
from pigeon.media.storage import (
    CHUNK,
    KEY,
    MAX_PRESIGN_SECONDS,
    byte_span,
    check_key,
    content_disposition,
    require_aware,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType


# -- an S3-compatible bucket ------------------------------------------------------------------

NO_OBJECT = {"404", "NoSuchKey", "NotFound"}  # a HEAD answer has no body, hence no named code
NO_BUCKET = {"404", "NoSuchBucket"}


def _code(error: ClientError) -> str | None:
    return error.response.get("Error", {}).get("Code")


class S3Store:
    """Objects in one bucket, under an optional prefix. Every boto3 call runs in a worker
    thread; one client is shared, as botocore clients are thread-safe."""

    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint = endpoint or None
        self.region = region
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3},
            connect_timeout=5,
        )
        self._client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        self._transfer = TransferConfig(
            multipart_threshold=16 * 1024 * 1024,
            multipart_chunksize=8 * 1024 * 1024,
            max_concurrency=4,
        )

    def object_name(self, key: str) -> str:
        return self.prefix + check_key(key)

    async def save(self, key: str, source: Path, content_type: str) -> int:
        name = self.object_name(key)
        size = (await asyncio.to_thread(source.stat)).st_size
        with _reaching("store a file"):
            await asyncio.to_thread(
                self._client.upload_file,
                str(source),
                self.bucket,
                name,
                ExtraArgs={"ContentType": content_type},
                Config=self._transfer,
            )
        return size

    async def stream(
        self, key: str, start: int = 0, end: int | None = None, chunk: int = CHUNK
    ) -> AsyncIterator[bytes]:
        if chunk <= 0:
            raise ValueError("chunk must be positive")
        size = await self.size(key)
        if size is None:
            raise MediaMissing(key)
        return self._object_chunks(key, *byte_span(start, end, size), chunk)

    async def _object_chunks(
        self, key: str, start: int, stop: int, chunk: int
    ) -> AsyncIterator[bytes]:
        if start >= stop:
            return
        try:
            response = await asyncio.to_thread(
                self._client.get_object,
                Bucket=self.bucket,
                Key=self.object_name(key),
                Range=f"bytes={start}-{stop - 1}",
            )
        except ClientError as error:
            if _code(error) in NO_OBJECT:
                raise MediaMissing(key) from None
            raise MediaStoreUnavailable(f"S3 could not read {key}: {error}") from error
        except BotoCoreError as error:
            raise MediaStoreUnavailable(f"S3 could not read {key}: {error}") from error
        body = response["Body"]
        try:
            position = start
            while position < stop:
                data = await asyncio.to_thread(body.read, min(chunk, stop - position))
                if not data:
                    break
                position += len(data)
                yield data
        finally:
            body.close()

    async def size(self, key: str) -> int | None:
        try:
            head = await asyncio.to_thread(
                self._client.head_object, Bucket=self.bucket, Key=self.object_name(key)
            )
        except ClientError as error:
            if _code(error) in NO_OBJECT:
                return None
            raise MediaStoreUnavailable(f"S3 could not look up {key}: {error}") from error
        except BotoCoreError as error:
            raise MediaStoreUnavailable(f"S3 could not look up {key}: {error}") from error
        return head["ContentLength"]

    async def delete(self, key: str) -> None:
        with _reaching("remove a file"):
            await asyncio.to_thread(
                self._client.delete_object, Bucket=self.bucket, Key=self.object_name(key)
            )

    async def keys(self, older_than: dt.datetime) -> list[str]:
        require_aware(older_than)
        with _reaching("list its files"):
            return await asyncio.to_thread(self._old_objects, older_than)

    def _old_objects(self, older_than: dt.datetime) -> list[str]:
        found = []
        pages = self._client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", []):
                key = item["Key"].removeprefix(self.prefix)
                if item["LastModified"] < older_than and KEY.fullmatch(key):
                    found.append(key)
        return sorted(found)

    async def presigned_url(
        self, key: str, *, seconds: int, file_name: str, content_type: str, inline: bool
    ) -> str | None:
        """A GET link valid for `seconds`, to hand out only after the app's own access check:
        anyone holding it can read the object until it expires."""
        if not 0 < seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(f"seconds must be between 1 and {MAX_PRESIGN_SECONDS}")
        params = {
            "Bucket": self.bucket,
            "Key": self.object_name(key),
            "ResponseContentType": content_type,
            "ResponseContentDisposition": content_disposition(file_name, inline=inline),
        }
        return await asyncio.to_thread(
            self._client.generate_presigned_url, "get_object", Params=params, ExpiresIn=seconds
        )

    async def check(self) -> None:
        """The bucket answers (created if missing) and accepts a write and a delete."""
        probe = f"{self.prefix}.check.{secrets.token_hex(4)}"
        try:
            await self._ensure_bucket()
            await asyncio.to_thread(
                self._client.put_object, Bucket=self.bucket, Key=probe, Body=b"ok"
            )
            await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=probe)
        except (BotoCoreError, ClientError) as error:
            where = self.endpoint or f"AWS {self.region}"
            raise MediaStoreUnavailable(
                f"S3 bucket {self.bucket!r} at {where} cannot be written: {error}"
            ) from error

    async def _ensure_bucket(self) -> None:
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
            return
        except ClientError as error:
            if _code(error) not in NO_BUCKET:
                raise
        try:
            if self.region == "us-east-1":
                await asyncio.to_thread(self._client.create_bucket, Bucket=self.bucket)
            else:
                where = cast("BucketLocationConstraintType", self.region)
                await asyncio.to_thread(
                    self._client.create_bucket,
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": where},
                )
        except ClientError as error:  # another process created it first
            if _code(error) != "BucketAlreadyOwnedByYou":
                raise

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


@contextmanager
def _reaching(what: str) -> Iterator[None]:
    """S3's own errors, other than a missing object, as the store being unavailable."""
    try:
        yield
    except (BotoCoreError, ClientError) as error:
        raise MediaStoreUnavailable(f"S3 could not {what}: {error}") from error
