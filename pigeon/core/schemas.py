"""Pydantic helpers shared by the domains' request models."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from pigeon.core.errors import Invalid
from pigeon.core.text import clean_text, single_line


class In(BaseModel):
    """A request body: unknown fields are refused, so a typo is an error, not a no-op."""

    model_config = ConfigDict(extra="forbid")


def _as_value_error(fn, **kw):  # type: ignore[no-untyped-def]
    def check(value: str) -> str:
        try:
            return fn(value, **kw)
        except Invalid as exc:
            raise ValueError(exc.message) from None

    return check


def Line(max_chars: int, field: str = "value") -> object:  # noqa: N802 - a type factory
    """A single line of text: trimmed, no control characters, 1..max_chars."""
    return Annotated[
        str, AfterValidator(_as_value_error(single_line, field=field, max_chars=max_chars))
    ]


def Paragraph(max_chars: int, field: str = "value", min_chars: int = 0) -> object:  # noqa: N802
    return Annotated[
        str,
        AfterValidator(
            _as_value_error(clean_text, field=field, max_chars=max_chars, min_chars=min_chars)
        ),
    ]
