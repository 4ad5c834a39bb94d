"""Bounded types for request validation: nothing out of a column's range gets in.

Ids are strict integers (JSON `true` is not user 1) within their column's range; times are
turned to UTC and kept within years 1970..9000, so that no later conversion or comparison can
overflow. A value outside is a 422 with the field named, never a 500.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from fastapi import Path, Query
from pydantic import AfterValidator, Field

INT32_MAX = 2_147_483_647
INT64_MAX = 9_223_372_036_854_775_807
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9000, 1, 1, tzinfo=dt.UTC)

UserId = Annotated[int, Field(ge=1, le=INT32_MAX, strict=True)]
RowId = Annotated[int, Field(ge=1, le=INT64_MAX, strict=True)]
UserIdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
RowIdPath = Annotated[int, Path(ge=1, le=INT64_MAX)]
RowIdQuery = Annotated[int | None, Query(ge=1, le=INT64_MAX)]


_ROW_ID = re.compile(r"[1-9][0-9]{0,18}")


def parse_row_id(value: str) -> int | None:
    """An id typed into a form field or header: ASCII digits only (`str.isdigit` also takes
    "²", which `int` refuses), 1 to INT64_MAX; None for anything else."""
    value = value.strip()
    if not _ROW_ID.fullmatch(value):
        return None
    number = int(value)
    return number if number <= INT64_MAX else None


def utc_within_range(value: dt.datetime) -> dt.datetime:
    """A time in UTC (a naive one is taken as UTC), between 1970 and 9000."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    if not EARLIEST <= value <= LATEST:
        raise ValueError("the time must be between 1970 and 9000")
    return value


Instant = Annotated[dt.datetime, AfterValidator(utc_within_range)]

# PostgreSQL text cannot hold NUL; refuse it at the edge for strings that reach a query.
NO_NUL = r"^[^\x00]*$"
