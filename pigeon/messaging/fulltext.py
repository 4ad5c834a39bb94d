"""The full-text index of message bodies: what a typed query becomes, and which ids it matches.

The index (SQLite FTS5, or a GIN index on a PostgreSQL tsvector; see the migration
`message full-text index`) only narrows the candidates. Who may see a candidate is still
decided by `visibility.visible_messages`, so the index never needs to know about windows,
membership or blocks.

What a person types never reaches MATCH or to_tsquery as syntax: it is cut into words
(letters, marks and digits, as both indexes cut text), each word becomes a quoted term, and
the last one matches as a prefix, so "boo" already finds "books" while typing. Quotes, `*`,
`-`, `:`, parentheses, `NEAR`, `OR` are punctuation or plain words here; a query without a
word finds nothing.
"""

from __future__ import annotations

import unicodedata

from sqlalchemy import ColumnElement, column, func, literal_column, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from pigeon.messaging.models import Message

MAX_TERMS = 12  # a long paste is still one search, not a hundred-term query

_FTS = table("message_fts", column("rowid"), column("message_fts"))
_SIMPLE: ColumnElement[str] = literal_column(
    "'simple'::regconfig"
)  # a constant, so the GIN expression matches


def in_word(ch: str) -> bool:
    """Whether `ch` is part of a word (a letter, a mark or a digit), as both indexes see it."""
    category = unicodedata.category(ch)
    return category[0] in "LNM" or category == "Co"


def words(q: str) -> list[str]:
    """The words of a query, lowercased, at most MAX_TERMS."""
    found: list[str] = []
    current: list[str] = []
    for ch in unicodedata.normalize("NFC", q).lower() + " ":
        if in_word(ch):
            current.append(ch)
        elif current:
            found.append("".join(current))
            current = []
    return found[:MAX_TERMS]


def fts5_query(terms: list[str]) -> str:
    """`"a" "b"*`: every word (a quoted string is a plain phrase to FTS5), the last a prefix."""
    return " ".join(f'"{t}"' for t in terms) + "*"


def tsquery(terms: list[str]) -> str:
    """`'a' & 'b':*` for to_tsquery: the words hold no quotes or operators to escape."""
    return " & ".join(f"'{t}'" for t in terms) + ":*"


def matching(dialect: str, terms: list[str]) -> ColumnElement[bool]:
    """A condition on `Message` that holds for messages whose body has all the words."""
    if dialect == "postgresql":
        vector = func.to_tsvector(_SIMPLE, Message.body)
        return vector.op("@@")(func.to_tsquery(_SIMPLE, tsquery(terms)))
    ids = select(_FTS.c.rowid).where(_FTS.c.message_fts.op("MATCH")(fts5_query(terms)))
    return Message.id.in_(ids)


async def plan_for_these_words(session: AsyncSession, dialect: str) -> None:
    """On PostgreSQL, plan the search for its own words each time. After five runs of a
    prepared statement PostgreSQL may switch to a generic plan, which cannot tell how rare the
    words are and reads every body instead of the index (a hundred times slower)."""
    if dialect == "postgresql":
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
