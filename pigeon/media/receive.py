"""Receiving uploaded files: the request body streamed to files on disk, never held whole in
memory, and cut off as soon as a file passes the size limit.

A `multipart/form-data` body with file parts and small text fields (an id, a message). Each
file's bytes go to a temporary file as they arrive; a body larger than the limit is refused at
once (by its Content-Length when it declares one) with `file_too_large`, and whatever was
written is removed. A file input left empty sends a part with no file name and no bytes: that
is no file at all.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from email.message import Message as Headers
from pathlib import Path
from typing import IO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from pigeon.core.errors import BadRequest, TooLarge, UnsupportedType

MAX_FIELD_BYTES = 1024  # a text field beside the file (an id)
MAX_FIELDS = 8
# the multipart framing around the files: part headers and boundaries
ENVELOPE_BYTES = 8 * 1024


@dataclasses.dataclass
class Received:
    """One file that arrived: its bytes in a temporary file the caller removes (`discard`)."""

    path: Path
    file_name: str
    size: int

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclasses.dataclass
class Form:
    files: list[Received] = dataclasses.field(default_factory=list)
    fields: dict[str, str] = dataclasses.field(default_factory=dict)  # each name's last value
    items: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # all, in order

    def values(self, name: str) -> list[str]:
        """Every value of a field sent more than once (`attachment_ids`)."""
        return [value for key, value in self.items if key == name]

    def discard(self) -> None:
        for received in self.files:
            received.discard()


class _TooLarge(Exception):
    pass


class _Parts:
    """The parser's callbacks: file parts (named `field`) to disk, small fields to memory."""

    def __init__(
        self,
        form: Form,
        folder: Path,
        field: str,
        limit: int,
        max_files: int,
        max_fields: int,
        max_field_bytes: int,
    ) -> None:
        self.form, self.folder, self.field, self.limit = form, folder, field, limit
        self.max_files, self.max_fields = max_files, max_fields
        self.max_field_bytes = max_field_bytes
        self.files = form.files
        self._sink: IO[bytes] | None = None
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[str, str] = {}
        self._name: str | None = None
        self._value = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field_data,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
        }

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _part_begin(self) -> None:
        self._headers, self._name, self._value = {}, None, bytearray()

    def _header_field_data(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.decode("utf-8", "replace").strip()
        self._header_field = self._header_value = b""

    def _headers_finished(self) -> None:
        disposition = Headers()
        disposition["content-disposition"] = self._headers.get("content-disposition", "")
        params = dict(disposition.get_params(header="content-disposition") or [])
        self._name = params.get("name")
        filename = disposition.get_filename()
        if filename is not None and self._name == self.field:
            if len(self.files) >= self.max_files:
                raise BadRequest(
                    f"At most {self.max_files} files at a time.",
                    code="too_many_files",
                    fields={self.field: f"at most {self.max_files}"},
                )
            fd, name = tempfile.mkstemp(prefix="upload-", dir=self.folder)
            self._sink = os.fdopen(fd, "wb")
            self.files.append(Received(Path(name), filename, 0))
        elif filename is not None:
            self._name = None  # a file where none was asked for: ignored
        elif len(self.form.items) >= self.max_fields:
            raise BadRequest("Too many form fields.")

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._sink is not None:
            current = self.files[-1]
            current.size += end - start
            if current.size > self.limit:
                raise _TooLarge
            self._sink.write(data[start:end])
        elif self._name is not None:
            self._value += data[start:end]
            if len(self._value) > self.max_field_bytes:
                raise BadRequest("A form field is too long.")

    def _part_end(self) -> None:
        if self._sink is not None:
            self.close()
            if not self.files[-1].file_name and not self.files[-1].size:
                self.files.pop().discard()  # a file input left empty
        elif self._name:
            value = self._value.decode("utf-8", "replace")
            self.form.fields[self._name] = value
            self.form.items.append((self._name, value))


async def receive_form(
    content_type: str,
    content_length: str | None,
    body: AsyncIterator[bytes],
    *,
    folder: Path,
    limit: int,
    too_large: Callable[[], TooLarge],
    field: str = "file",
    max_files: int = 1,
    max_fields: int = MAX_FIELDS,
    max_field_bytes: int = MAX_FIELD_BYTES,
    into: Form | None = None,
) -> Form:
    """Stream a multipart body's files (parts named `field`) into `folder`, each refused past
    `limit` bytes, and keep its small text fields.

    `into` is filled as the parts arrive: when the body is refused part way, the caller still
    has the text fields that came before (a page shows the message that was typed)."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UnsupportedType(
            f"Send the file as multipart/form-data, in a part named `{field}`.",
            code="unsupported_media_type",
        )
    # ASCII digits only, and a sane length: `int` refuses "²" and strings past 4,300 digits
    declared = (
        int(content_length)
        if content_length
        and content_length.isascii()
        and content_length.isdigit()
        and len(content_length) <= 19
        else None
    )
    most = max_files * limit + max_fields * max_field_bytes + ENVELOPE_BYTES
    if declared is not None and declared > most:
        raise too_large()
    folder.mkdir(parents=True, exist_ok=True)
    form = into if into is not None else Form()
    parts = _Parts(form, folder, field, limit, max_files, max_fields, max_field_bytes)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    try:
        try:
            async for chunk in body:
                parser.write(chunk)
            parser.finalize()
        except _TooLarge:
            raise too_large() from None
        except MultipartParseError:
            raise BadRequest("The upload is not a well-formed multipart body.") from None
        finally:
            parts.close()
        return form
    except BaseException:
        form.discard()
        raise


async def receive_file(
    content_type: str,
    content_length: str | None,
    body: AsyncIterator[bytes],
    *,
    folder: Path,
    limit: int,
    too_large: Callable[[], TooLarge],
) -> tuple[Received, dict[str, str]]:
    """The one file of an upload (part `file`) and the fields beside it."""
    form = await receive_form(
        content_type, content_length, body, folder=folder, limit=limit, too_large=too_large
    )
    if not form.files:
        raise BadRequest(
            "Attach the file in a part named `file`.",
            code="file_missing",
            fields={"file": "required"},
        )
    return form.files[0], form.fields
