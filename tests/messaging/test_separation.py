"""Message text lives only in the messaging database: never a byte of it in the primary one."""

import uuid

from sqlalchemy import text

from tests.support.people import dm, send


async def _dump(db) -> str:
    """Every row of every table of one database, as text."""
    async with db.read() as session:
        if db.is_sqlite:
            names = [
                r[0]
                for r in await session.execute(
                    text("SELECT name FROM sqlite_master WHERE type='table'")
                )
            ]
        else:
            names = [
                r[0]
                for r in await session.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname='public'")
                )
            ]
        chunks = []
        for name in names:
            rows = await session.execute(text(f'SELECT * FROM "{name}"'))
            chunks.extend(repr(tuple(row)) for row in rows)
    return "\n".join(chunks)


async def test_message_text_never_reaches_the_primary_database(client, people, app, settings):
    secret = f"needle-{uuid.uuid4().hex}"
    conv = await dm(client, people.priv, people.free)
    r = await send(client, people.priv, conv["id"], f"the code is {secret}")
    assert r.status_code == 201
    msg = r.json()
    await client.patch(
        f"/api/v1/messages/{msg['id']}",
        json={"body": f"edited {secret}2"},
        headers=people.priv.headers,
    )
    await client.post(
        f"/api/v1/conversations/{conv['id']}/read",
        json={"message_id": msg["id"]},
        headers=people.free.headers,
    )

    dbs = app.state.runtime.dbs
    assert secret in await _dump(dbs.messaging)
    assert secret not in await _dump(dbs.app)
    if dbs.app.is_sqlite:  # and not in its files either: the database, its WAL, anything there
        for path in settings.data_dir.iterdir():
            if path.name.startswith("app.db"):
                assert secret.encode() not in path.read_bytes(), path.name
        found = [
            p.name
            for p in settings.data_dir.iterdir()
            if p.name.startswith("messages.db") and secret.encode() in p.read_bytes()
        ]
        assert found, "the message should be on disk in the messaging database"
