"""Bounded id and text types for request validation: nothing out of a column's range gets in."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field

INT32_MAX = 2_147_483_647
INT64_MAX = 9_223_372_036_854_775_807

UserId = Annotated[int, Field(ge=1, le=INT32_MAX, strict=False)]
RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]
UserIdPath = Annotated[int, Path(ge=1, le=INT32_MAX)]
RowIdPath = Annotated[int, Path(ge=1, le=INT64_MAX)]

# PostgreSQL text cannot hold NUL; refuse it at the edge for strings that reach a query.
NO_NUL = r"^[^\x00]*$"
