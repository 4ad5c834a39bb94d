"""Message search over the full-text index: words, prefixes, any text a person may type, and
never more than the reader may scroll to."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from pigeon.core import migrate
from pigeon.core.db import Databases
from pigeon.messaging import fulltext
from tests.safety.conftest import travel
from tests.support.people import dm, send

API = "/api/v1"


async def found(client, who, q, **params):  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/messages/search", params={"q": q, **params}, headers=who.headers)
    assert r.status_code == 200, r.text
    return [m["body"] for m in r.json()]


async def sent(client, who, conv_id, body):  # type: ignore[no-untyped-def]
    r = await send(client, who, conv_id, body)
    assert r.status_code == 201, r.text
    return r.json()


async def test_words_prefixes_and_case(client, people):
    conv = await dm(client, people.priv, people.free)
    await sent(client, people.priv, conv["id"], "New Books arrived on Tuesday")
    await sent(client, people.priv, conv["id"], "bookmarks are free at the till")
    await sent(client, people.priv, conv["id"], "nothing to see")

    assert await found(client, people.free, "books") == ["New Books arrived on Tuesday"]
    # the last word is a prefix: typing "boo" already finds both
    assert await found(client, people.free, "boo") == [
        "bookmarks are free at the till",
        "New Books arrived on Tuesday",
    ]
    assert await found(client, people.free, "TUESDAY new") == ["New Books arrived on Tuesday"]
    # every word must be there, in any order, and only the last is a prefix
    assert await found(client, people.free, "arrived books") == ["New Books arrived on Tuesday"]
    assert await found(client, people.free, "boo tuesday") == []
    assert await found(client, people.free, "arrive books") == []


async def test_accents_and_other_scripts(client, people):
    conv = await dm(client, people.priv, people.free)
    await sent(client, people.priv, conv["id"], "Un café crème, s'il vous plaît")
    await sent(client, people.priv, conv["id"], "Привет, книги пришли")
    await sent(client, people.priv, conv["id"], "Straße und Bücher 📚")

    assert await found(client, people.free, "CAFÉ") == ["Un café crème, s'il vous plaît"]
    assert await found(client, people.free, "crè") == ["Un café crème, s'il vous plaît"]
    assert await found(client, people.free, "КНИГИ") == ["Привет, книги пришли"]
    assert await found(client, people.free, "bücher") == ["Straße und Bücher 📚"]
    # a decomposed "é" (e + combining accent) is the same letter
    assert await found(client, people.free, "cafe\u0301") == ["Un café crème, s'il vous plaît"]
    assert await found(client, people.free, "📚") == []  # no word in it: nothing, not an error


HOSTILE = [
    '"',
    '""',
    '"books',
    "books\"'",
    "NEAR(books arrived)",
    "books NEAR arrived",
    "books OR nothing",
    "books AND",
    "NOT books",
    "*",
    "books*",
    "-books",
    "books -arrived",
    "body:books",
    "{body}: books",
    "(books",
    "books)",
    "^books",
    "books & arrived | !x",
    "'books':*",
    "books:*",
    "\\",
    "%_%",
    "   ",
    "...",
    "a" * 200,
]


@pytest.mark.parametrize("q", HOSTILE)
async def test_query_syntax_is_never_syntax(client, people, q):
    conv = await dm(client, people.priv, people.free)
    await sent(client, people.priv, conv["id"], "New books arrived")
    r = await client.get(f"{API}/messages/search", params={"q": q}, headers=people.free.headers)
    assert r.status_code == 200, r.text
    assert [m["body"] for m in r.json()] in ([], ["New books arrived"])


async def test_operators_are_plain_words(client, people):
    conv = await dm(client, people.priv, people.free)
    await sent(client, people.priv, conv["id"], "books arrived")
    await sent(client, people.priv, conv["id"], "or maybe not, near the door")
    # OR and NEAR are words to look for, not operators that widen the match
    assert await found(client, people.free, "books OR arrived") == []
    assert await found(client, people.free, "near door") == ["or maybe not, near the door"]
    assert await found(client, people.free, "-books") == ["books arrived"]


async def test_an_edit_is_found_by_its_new_text_only(client, people):
    conv = await dm(client, people.priv, people.free)
    message = await sent(client, people.priv, conv["id"], "meet at the library")
    r = await client.patch(
        f"{API}/messages/{message['id']}",
        json={"body": "meet at the café"},
        headers=people.priv.headers,
    )
    assert r.status_code == 200, r.text
    assert await found(client, people.free, "library") == []
    assert await found(client, people.free, "café") == ["meet at the café"]
    assert await found(client, people.free, "meet") == ["meet at the café"]  # once, not twice


async def test_deleted_and_purged_messages_are_not_found(app, client, people):
    from pigeon.messaging import retention

    conv = await dm(client, people.plus, people.priv)
    gone = await sent(client, people.priv, conv["id"], "deleted hobbit")
    await sent(client, people.plus, conv["id"], "old hobbit")
    r = await client.delete(f"{API}/messages/{gone['id']}", headers=people.priv.headers)
    assert r.status_code == 204
    assert await found(client, people.plus, "hobbit") == ["old hobbit"]

    travel(app, people, days=400)  # outside everyone's window: soft-deleted, then purged
    await sent(client, people.plus, conv["id"], "new hobbit")
    first = await retention.run_exclusive(app.state.runtime)
    assert await found(client, people.plus, "hobbit") == ["new hobbit"]
    assert await _indexed(app, "hobbit") in (None, 1)  # soft-deleted ones leave the index
    travel(app, people, days=app.state.settings.retention_grace_days + 1)
    second = await retention.run_exclusive(app.state.runtime)
    assert first.purged + second.purged == 2
    assert await found(client, people.plus, "hobbit") == ["new hobbit"]
    assert await _indexed(app, "hobbit") in (None, 1)


async def _indexed(app, word: str) -> int | None:  # type: ignore[no-untyped-def]
    """How many entries the SQLite index holds for `word` (None on PostgreSQL, whose index
    follows its rows by itself)."""
    db = app.state.runtime.dbs.messaging
    if db.dialect != "sqlite":
        return None
    async with db.read() as session:
        query = text("SELECT count(*) FROM message_fts WHERE message_fts MATCH :q")
        return int(await session.scalar(query, {"q": fulltext.fts5_query([word])}) or 0)


async def test_blocked_senders_and_other_peoples_conversations_stay_hidden(client, people):
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Readers", "member_ids": [people.free.id, people.free2.id]},
        )
    ).json()
    await sent(client, people.free2, group["id"], "pancakes from the blocked one")
    await sent(client, people.priv, group["id"], "pancakes from the owner")
    r = await client.post(
        f"{API}/blocks", json={"user_id": people.free2.id}, headers=people.free.headers
    )
    assert r.status_code == 201
    private = await dm(client, people.priv, people.plus)
    await sent(client, people.priv, private["id"], "pancakes in private")

    assert await found(client, people.free, "pancakes") == ["pancakes from the owner"]
    assert await found(client, people.outsider, "pancakes") == []
    assert await found(client, people.plus, "pancakes") == ["pancakes in private"]
    r = await client.get(
        f"{API}/messages/search",
        params={"q": "pancakes", "conversation_id": private["id"]},
        headers=people.free.headers,
    )
    assert r.status_code == 404


async def test_paging_with_before_id(client, people):
    conv = await dm(client, people.priv, people.free)
    ids = [(await sent(client, people.priv, conv["id"], f"tea number {i}"))["id"] for i in range(5)]
    first = await client.get(
        f"{API}/messages/search", params={"q": "tea", "limit": 2}, headers=people.free.headers
    )
    assert [m["id"] for m in first.json()] == [ids[4], ids[3]]
    rest = await found(client, people.free, "tea", before_id=ids[3])
    assert rest == ["tea number 2", "tea number 1", "tea number 0"]


def test_a_query_becomes_quoted_words():
    assert fulltext.words('Boo "NEAR" (x) -y: e\u0301') == ["boo", "near", "x", "y", "\u00e9"]
    assert fulltext.fts5_query(["a", "b"]) == '"a" "b"*'
    assert fulltext.tsquery(["a", "b"]) == "'a' & 'b':*"
    assert fulltext.words("!!! ... ***") == []
    assert len(fulltext.words("w " * 100)) == fulltext.MAX_TERMS


async def test_the_migration_indexes_messages_already_there(tmp_path: Path):
    """Upgrading a messaging database that already holds messages makes them searchable."""
    dbs = Databases(
        f"sqlite+aiosqlite:///{tmp_path}/app.db", f"sqlite+aiosqlite:///{tmp_path}/messages.db"
    )
    try:
        await migrate.upgrade(dbs.messaging, "572b5768e9c1")
        async with dbs.messaging.write() as session:
            await session.execute(
                text(
                    "INSERT INTO conversation (id, kind, created_by, created_at, updated_at) "
                    "VALUES (1, 'direct', 1, '2026-01-01', '2026-01-01')"
                )
            )
            for i, (body, deleted) in enumerate(
                [("kept gardening tips", None), ("deleted gardening", "2026-01-02")], start=1
            ):
                await session.execute(
                    text(
                        "INSERT INTO message (id, conversation_id, sender_id, body, created_at, "
                        "deleted_at) VALUES (:id, 1, 1, :body, '2026-01-01', :deleted)"
                    ),
                    {"id": i, "body": body, "deleted": deleted},
                )
        await migrate.upgrade(dbs.messaging)
        async with dbs.messaging.read() as session:
            query = text("SELECT rowid FROM message_fts WHERE message_fts MATCH :q")
            hits = (await session.scalars(query, {"q": fulltext.fts5_query(["garden"])})).all()
        assert list(hits) == [1]
    finally:
        await dbs.dispose()
