"""Pydantic helpers shared by the domains' request models."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from pigeon.core.errors import Invalid
from pigeon.core.text import clean_text, single_line

M = TypeVar("M", bound=BaseModel)


def built(cls: type[M], values: dict[str, Any]) -> M:
    """`cls.model_construct(**values)` for values already checked and complete, given in the
    model's field order (its JSON's order): a third of the cost, which counts for the fifty
    messages of a history page."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", values)
    object.__setattr__(model, "__pydantic_fields_set__", set(values))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


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
