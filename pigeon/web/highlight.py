"""Showing where a search matched: a message's text cut into pieces, the matching words marked.

The pieces stay plain text; the template escapes each one and wraps the marked ones in <mark>,
so a message that looks like markup is still shown as text. A word matches when it begins with
one of the query's words, case and accents aside, as the index matched it.
"""

from __future__ import annotations

from pigeon.messaging.finder import folded
from pigeon.messaging.fulltext import in_word, words

SNIPPET = 280  # characters shown of a long message, around its first match
LEAD = 60  # of them before the first match


def pieces(text: str, q: str) -> list[tuple[str, bool]]:
    """(piece, marked) in order; together they are the text, or a snippet of a long one."""
    terms = [folded(t) for t in words(q)]
    spans: list[tuple[int, int]] = []
    start = None
    for i, ch in enumerate(text + " "):
        if in_word(ch):
            start = i if start is None else start
        elif start is not None:
            if any(folded(text[start:i]).startswith(t) for t in terms):
                spans.append((start, i))
            start = None
    lo, hi = 0, len(text)
    if len(text) > SNIPPET:
        lo = max(0, spans[0][0] - LEAD) if spans else 0
        hi = min(len(text), lo + SNIPPET)
    out: list[tuple[str, bool]] = [("…", False)] if lo else []
    at = lo
    for a, b in spans:
        if a < lo or b > hi:
            continue
        if a > at:
            out.append((text[at:a], False))
        out.append((text[a:b], True))
        at = b
    if at < hi:
        out.append((text[at:hi], False))
    if hi < len(text):
        out.append(("…", False))
    return out
