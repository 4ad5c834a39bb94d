"""Create, empty and drop the test run's PostgreSQL databases."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url


def dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


def async_url(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


def create_databases(url: str, prefix: str) -> tuple[str, str]:
    names = (f"{prefix}_app", f"{prefix}_msg")

    async def go() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            for name in names:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    return names


def drop_databases(url: str, names: tuple[str, str]) -> None:
    _EMPTYING.close(names)

    async def go() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(go())


TABLES = (
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
    "AND tablename NOT LIKE 'alembic_version%'"
)
# the sequences of identity and serial columns: what TRUNCATE ... RESTART IDENTITY restarts
OWNED_SEQUENCES = (
    "SELECT s.relname FROM pg_class s JOIN pg_depend d ON d.objid = s.oid "
    "AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
    "WHERE s.relkind = 'S' AND d.deptype IN ('a', 'i')"
)


class _Emptying:
    """A connection to each test database, kept open on a loop of its own for the whole run.
    Rows are deleted rather than truncated: TRUNCATE gives each of some forty tables new files
    (a quarter of a second a test), DELETE of a test's few rows takes milliseconds. Foreign
    keys are not checked meanwhile (`session_replication_role`, which a superuser may set:
    the test server's `postgres`); without it, TRUNCATE as before."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.conns: dict[str, asyncpg.Connection] = {}

    def empty(self, url: str, names: tuple[str, str]) -> None:
        self.loop = self.loop or asyncio.new_event_loop()
        self.loop.run_until_complete(self._empty(url, names))

    async def _empty(self, url: str, names: tuple[str, str]) -> None:
        for name in names:
            try:
                await self._empty_one(await self._connection(url, name))
            except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError):
                # a test ended every connection (an outage, a restore): once more, anew
                self.conns.pop(name, None)
                await self._empty_one(await self._connection(url, name))

    async def _connection(self, url: str, name: str) -> asyncpg.Connection:
        if name not in self.conns:
            self.conns[name] = await asyncpg.connect(dsn(url, name))
        return self.conns[name]

    async def _empty_one(self, conn: asyncpg.Connection) -> None:
        tables = [f'"{row[0]}"' for row in await conn.fetch(TABLES)]
        if not tables:
            return
        if await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
            sequences = [f'"{row[0]}"' for row in await conn.fetch(OWNED_SEQUENCES)]
            await conn.execute(
                "SET session_replication_role = replica;"
                + "".join(f"DELETE FROM {table};" for table in tables)
                + "".join(f"ALTER SEQUENCE {seq} RESTART;" for seq in sequences)
                + "SET session_replication_role = DEFAULT;"
            )
        else:
            await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    def close(self, names: tuple[str, str]) -> None:
        for name in names:
            conn = self.conns.pop(name, None)
            if conn is not None and self.loop is not None:
                self.loop.run_until_complete(conn.close())
        if not self.conns and self.loop is not None:
            self.loop.close()
            self.loop = None


_EMPTYING = _Emptying()


def empty_all(url: str, names: tuple[str, str]) -> None:
    """Empty every table but the migration versions (fast isolation between tests)."""
    _EMPTYING.empty(url, names)
