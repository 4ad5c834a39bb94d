"""Upgrades: a database built at the first migration of each history, filled as the first
release would have filled it, upgrades to today's schema and serves its data; a schema newer
than the code is refused with a clear message; `db upgrade --dry-run` changes nothing."""

from __future__ import annotations

import datetime as dt
import functools
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from httpx import ASGITransport, AsyncClient

from pigeon.core import migrate
from pigeon.core.db import Databases, UTCDateTime
from pigeon.settings import Settings
from tests.support.installs import empty_install
from tests.test_cli import pigeon  # noqa: F401 - the CLI on a fresh data folder

FIRST = {"app": "c6f14643e5be", "messaging": "4e51ed8d32b2"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
PASSWORD = "an old release's password"


@pytest.fixture
def empty(backend: str, tmp_path: Path) -> Iterator[Settings]:
    """Settings of an install whose databases exist but hold no schema yet."""
    (tmp_path / "data").mkdir()
    with empty_install(
        backend,
        tmp_path / "data",
        "pigeon_upgrade",
        secret_key="upgrade-test-" + uuid.uuid4().hex,
        rate_limits_enabled=False,
        tune_gc=False,
    ) as found:
        yield found


def table(name: str, *columns: str, times: tuple[str, ...] = ()) -> sa.TableClause:
    return sa.table(
        name, *(sa.column(c) for c in columns), *(sa.column(t, UTCDateTime()) for t in times)
    )


async def fill_first_release(dbs: Databases) -> None:
    """What the first release wrote: a community, two members, a conversation, messages."""
    digest = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash(PASSWORD)
    user = table(
        "user",
        "id", "email", "username", "password_hash", "display_name", "bio", "tier", "role",
        "is_active",
        times=("created_at",),
    )  # fmt: skip
    async with dbs.app.write() as session:
        await session.execute(
            sa.insert(
                table("community", "id", "name", "slug", "is_default", times=("created_at",))
            ),
            [
                {
                    "id": 1,
                    "name": "The Store",
                    "slug": "store",
                    "is_default": True,
                    "created_at": NOW,
                }
            ],
        )
        await session.execute(
            sa.insert(user),
            [
                {"id": i, "email": f"{n}@example.com", "username": n, "password_hash": digest,
                 "display_name": n.title(), "bio": "", "tier": t, "role": "member",
                 "is_active": True, "created_at": NOW}
                for i, n, t in ((1, "ada", "privileged"), (2, "bo", "free"))
            ],
        )  # fmt: skip
        await session.execute(
            sa.insert(table("membership", "community_id", "user_id", times=("joined_at",))),
            [{"community_id": 1, "user_id": i, "joined_at": NOW} for i in (1, 2)],
        )
        await session.execute(
            sa.insert(
                sa.table(
                    "setting",
                    sa.column("key"),
                    sa.column("value", sa.JSON()),
                    sa.column("updated_by"),
                    sa.column("updated_at", UTCDateTime()),
                )
            ),
            [{"key": "messaging_enabled", "value": True, "updated_by": None, "updated_at": NOW}],
        )
    conversation = table(
        "conversation", "id", "kind", "title", "created_by", "direct_key", "last_message_id",
        times=("created_at", "updated_at"),
    )  # fmt: skip
    participant = table(
        "participant", "conversation_id", "user_id", "role", "display_name",
        "last_read_message_id", "unread_count", times=("joined_at",),
    )  # fmt: skip
    message = table("message", "id", "conversation_id", "sender_id", "body", times=("created_at",))
    async with dbs.messaging.write() as session:
        await session.execute(
            sa.insert(conversation),
            [{"id": 1, "kind": "direct", "title": None, "created_by": 1, "direct_key": "1:2",
              "last_message_id": 2, "created_at": NOW, "updated_at": NOW}],
        )  # fmt: skip
        await session.execute(
            sa.insert(participant),
            [
                {"conversation_id": 1, "user_id": 1, "role": "member", "display_name": "Ada",
                 "last_read_message_id": 2, "unread_count": 0, "joined_at": NOW},
                {"conversation_id": 1, "user_id": 2, "role": "member", "display_name": "Bo",
                 "last_read_message_id": 0, "unread_count": 2, "joined_at": NOW},
            ],
        )  # fmt: skip
        await session.execute(
            sa.insert(message),
            [
                {"id": 1, "conversation_id": 1, "sender_id": 1, "body": "The atlas came in",
                 "created_at": NOW},
                {"id": 2, "conversation_id": 1, "sender_id": 1, "body": "Shall I hold it?",
                 "created_at": NOW + dt.timedelta(minutes=1)},
            ],
        )  # fmt: skip


async def advance_sequences(dbs: Databases) -> None:
    """Rows written with their ids, as the first release's own inserts would have left the
    PostgreSQL sequences: past them."""
    for db, tables in (
        (dbs.app, ("user", "community")),
        (dbs.messaging, ("conversation", "message")),
    ):
        async with db.write() as session:
            if session.bind.dialect.name != "postgresql":
                return
            for name in tables:
                await session.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), "
                        f'(SELECT max(id) FROM "{name}"))'
                    )
                )


async def test_the_first_schema_upgrades_to_today_and_serves_its_data(
    empty: Settings, clock
) -> None:
    from pigeon.app import create_app

    dbs = Databases(empty.app_db_url, empty.messaging_db_url)
    try:
        await migrate.upgrade(dbs.app, FIRST["app"])
        await migrate.upgrade(dbs.messaging, FIRST["messaging"])
        await fill_first_release(dbs)
        await advance_sequences(dbs)
        assert len(migrate.pending("app", FIRST["app"])) >= 3
    finally:
        await dbs.dispose()

    app = create_app(empty, clock=clock)  # the server upgrades on start
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as c:
            r = await c.post("/api/v1/auth/login", json={"login": "bo", "password": PASSWORD})
            assert r.status_code == 200, r.text
            bo = {"Authorization": f"Bearer {r.json()['access_token']}"}
            r = await c.get("/api/v1/auth/me", headers=bo)
            assert r.json()["username"] == "bo" and r.json()["tier"] == "free"
            r = await c.get("/api/v1/conversations", headers=bo)
            [conv] = r.json()
            assert conv["unread_count"] == 2
            r = await c.get("/api/v1/conversations/1/messages", headers=bo)
            assert [m["body"] for m in r.json()] == ["The atlas came in", "Shall I hold it?"]
            # the full-text index, added later, covers what the first release stored
            r = await c.get("/api/v1/messages/search", params={"q": "atlas"}, headers=bo)
            assert [m["id"] for m in r.json()] == [1], r.text
            # the free member may reply, as then: still in the community with Ada (an upgrade
            # that rebuilt the user table once took every membership with it)
            r = await c.post(
                "/api/v1/conversations/1/messages", json={"body": "Yes please"}, headers=bo
            )
            assert r.status_code == 201, r.text
    dbs = Databases(empty.app_db_url, empty.messaging_db_url)
    try:
        for db in (dbs.app, dbs.messaging):
            current, head = await migrate.status(db)
            assert current == head
            assert migrate.pending(db.name, current) == []
    finally:
        await dbs.dispose()


async def test_a_schema_newer_than_the_code_is_refused(empty: Settings, clock) -> None:
    from pigeon.app import create_app

    dbs = Databases(empty.app_db_url, empty.messaging_db_url)
    try:
        await migrate.upgrade(dbs.app)
        async with dbs.app.write() as session:  # as a later release would leave it
            await session.execute(
                sa.text("UPDATE alembic_version_app SET version_num = 'f00dfeedbeef'")
            )
        with pytest.raises(migrate.SchemaTooNew, match="f00dfeedbeef.*newer Pigeon"):
            await migrate.upgrade(dbs.app)
    finally:
        await dbs.dispose()
    app = create_app(empty, clock=clock)
    with pytest.raises(migrate.SchemaTooNew):
        async with app.router.lifespan_context(app):
            pass


async def test_a_database_at_several_revisions_at_once_is_refused(empty: Settings) -> None:
    """Each history here is one line: a version table of two rows (a branch merged by hand,
    say) stops the upgrade with a clear message, as Alembic would, rather than a guess."""
    dbs = Databases(empty.app_db_url, empty.messaging_db_url)
    try:
        await migrate.upgrade(dbs.app)
        async with dbs.app.write() as session:
            await session.execute(
                sa.text("INSERT INTO alembic_version_app (version_num) VALUES ('f00dfeedbeef')")
            )
        with pytest.raises(RuntimeError, match="app database is at several revisions"):
            await migrate.upgrade(dbs.app)
        with pytest.raises(RuntimeError, match="several revisions"):
            await migrate.status(dbs.app)
    finally:
        await dbs.dispose()


def test_dry_run_shows_what_would_run_and_changes_nothing(pigeon, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    r = pigeon("db", "upgrade", "--dry-run")
    assert r.exit_code == 0, r.output
    assert "app: would be created;" in r.output and FIRST["app"] in r.output
    assert not (data / "app.db").exists() and not (data / "messages.db").exists()
    assert pigeon("db", "upgrade").exit_code == 0
    r = pigeon("db", "upgrade", "--dry-run")
    assert "app: at" in r.output and "no migrations to run" in r.output
    conn = sqlite3.connect(data / "app.db")
    conn.execute("UPDATE alembic_version_app SET version_num = 'f00dfeedbeef'")
    conn.commit()
    conn.close()
    r = pigeon("db", "upgrade", "--dry-run")
    assert r.exit_code == 1 and "newer Pigeon" in r.output
    r = pigeon("db", "upgrade")
    assert r.exit_code == 1 and "newer Pigeon" in r.output


def test_the_heads_read_from_the_files_are_alembics() -> None:
    """A start reads each history's head from its files without Alembic; it must be the head
    Alembic would upgrade to, or a server would skip a migration it needs."""
    for name in ("app", "messaging"):
        assert migrate.written_heads(name) == set(migrate._script(name).get_heads())  # noqa: SLF001


def test_heads_are_read_from_a_branched_history_or_left_to_alembic(tmp_path, monkeypatch) -> None:
    """A merge revision is the one head of two branches; a file whose ids are not plain text
    is not guessed at, and Alembic decides."""
    versions = tmp_path / "app" / "versions"
    versions.mkdir(parents=True)
    monkeypatch.setattr(migrate, "MIGRATIONS", tmp_path)
    # a cache of its own, so the real histories' heads are not disturbed
    fresh = functools.cache(migrate.written_heads.__wrapped__)
    monkeypatch.setattr(migrate, "written_heads", fresh)

    def write(name: str, revision: str, down: str) -> None:
        (versions / f"{name}.py").write_text(f"revision = {revision}\ndown_revision = {down}\n")

    write("a", '"a1"', "None")
    write("b", '"b1"', '"a1"')
    write("c", '"c1"', '"a1"')
    migrate.written_heads.cache_clear()
    assert migrate.written_heads("app") == {"b1", "c1"}
    write("d", '"d1"', '("b1", "c1")')
    migrate.written_heads.cache_clear()
    assert migrate.written_heads("app") == {"d1"}
    write("e", 'make_id("e1")', '"d1"')
    migrate.written_heads.cache_clear()
    assert migrate.written_heads("app") is None


STARTS = """
import asyncio, sys
from pigeon.app import create_app

async def start():
    app = create_app()
    async with app.router.lifespan_context(app):
        pass

asyncio.run(start())
LEAN = ("alembic", "mako", "pygments", "PIL", "cryptography", "pydantic.v1")
print(sorted(m for m in LEAN if sys.modules.get(m)))
"""


def test_a_server_on_upgraded_databases_never_loads_alembic(pigeon, tmp_path) -> None:  # noqa: F811
    """`pigeon serve` upgrades before it becomes the server, so the server finds both
    databases at their heads and never holds Alembic, Mako and Pygments (10 MiB), nor Pillow
    before the first upload, nor `cryptography` (10 MiB, Web Push's) before the first push or
    subscription: not even when it generates its push key; nor pydantic's v1 package, which
    FastAPI would load to check for v1 models (1.7 MiB). With a migration pending (a new
    install), the server runs it itself."""
    assert pigeon("messaging", "enable").exit_code == 0
    env = {**os.environ, "PIGEON_TUNE_GC": "false"}
    started = subprocess.run(
        [sys.executable, "-c", STARTS], env=env, capture_output=True, text=True, check=True
    )
    assert started.stdout.strip() == "[]"
    env["PIGEON_DATA_DIR"] = str(tmp_path / "fresh")  # nothing upgraded there yet
    started = subprocess.run(
        [sys.executable, "-c", STARTS], env=env, capture_output=True, text=True, check=True
    )
    assert "alembic" in started.stdout
    assert (tmp_path / "fresh" / "app.db").exists()
