"""Text that people type: normalized, trimmed, free of control characters, within limits."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import func

from pigeon.core.errors import Invalid

# C0/C1 controls except tab, newline and carriage return; plus the bidi overrides and
# isolates, which are never needed in chat text and are used to spoof what a message says.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


# Characters that show nothing on their own: format characters (zero-width space and joiners,
# word joiner, BOM), separators, combining marks without a base, and the blank letters people
# use to send "empty" messages (Hangul fillers, the blank Braille pattern).
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Cc", "Mn", "Me"})
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def has_control(text: str) -> bool:
    return bool(_CONTROL.search(text))


def shows_something(text: str) -> bool:
    return any(
        unicodedata.category(ch) not in _INVISIBLE_CATEGORIES and ch not in _BLANK_LETTERS
        for ch in text
    )


def clean_text(value: str, *, field: str, max_chars: int, min_chars: int = 1) -> str:
    """Normalize (NFC), trim, refuse control characters and enforce the length limits."""
    text = unicodedata.normalize("NFC", value).strip()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if has_control(text):
        raise Invalid(
            f"{field.capitalize()} must not contain control characters.",
            fields={field: "contains control characters"},
        )
    if len(text) < min_chars or (min_chars > 0 and not shows_something(text)):
        raise Invalid(
            f"{field.capitalize()} must not be empty.", fields={field: "must not be empty"}
        )
    if len(text) > max_chars:
        raise Invalid(
            f"{field.capitalize()} must be at most {max_chars} characters.",
            fields={field: f"at most {max_chars} characters"},
        )
    return text


def single_line(value: str, *, field: str, max_chars: int) -> str:
    """For names and titles: like clean_text, and no line breaks or tabs either."""
    text = clean_text(value, field=field, max_chars=max_chars)
    if any(ch in text for ch in "\n\t"):
        raise Invalid(f"{field.capitalize()} must be a single line.", fields={field: "one line"})
    return text


def contains(column: Any, q: str) -> Any:
    """`column` contains `q`, case-insensitively, with `%` and `_` taken literally."""
    escaped = q.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(column).like(f"%{escaped}%", escape="\\")


# --- one emoji ---

_ZWJ, _VS16, _KEYCAP = "\u200d", "\ufe0f", "\u20e3"
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_TAGS = range(0xE0020, 0xE0080)  # subdivision flags (England, Scotland, Wales)
_REGIONAL = range(0x1F1E6, 0x1F200)
_PICTOGRAPHS = (
    range(0x1F000, 0x1F1E6),
    range(0x1F200, 0x1F3FB),
    range(0x1F400, 0x1FB00),
    range(0x2600, 0x27C0),
    range(0x2300, 0x2400),
    range(0x2B00, 0x2C00),
    range(0x2190, 0x2200),
    range(0x25A0, 0x2600),
    range(0x2934, 0x2936),
)
_SINGLE_PICTOGRAPHS = frozenset(
    "\u00a9\u00ae\u203c\u2049\u2122\u2139\u24c2\u3030\u303d\u3297\u3299"
)


def _is_pictograph(ch: str) -> bool:
    cp = ord(ch)
    return ch in _SINGLE_PICTOGRAPHS or any(cp in block for block in _PICTOGRAPHS)


def is_single_emoji(value: str) -> bool:
    """Whether `value` is one emoji as a person picks it: a pictograph with its variation
    selector and skin tone, a ZWJ sequence of them (a family), a flag (two regional
    indicators, or a subdivision's tag sequence), or a keycap (1️⃣)."""
    if not value or len(value) > 16:
        return False
    if len(value) == 2 and all(ord(ch) in _REGIONAL for ch in value):
        return True
    if value[0] in "0123456789#*":
        return value[1:] in (_KEYCAP, _VS16 + _KEYCAP)
    for part in value.split(_ZWJ):
        if not part or not _is_pictograph(part[0]):
            return False
        for ch in part[1:]:
            if ch != _VS16 and ord(ch) not in _SKIN_TONES and ord(ch) not in _TAGS:
                return False
    return True
