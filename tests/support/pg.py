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
    async def go() -> None:
        conn = await asyncpg.connect(dsn(url))
        try:
            for name in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(go())


def truncate_all(url: str, names: tuple[str, str]) -> None:
    """Empty every table but the migration versions (fast isolation between tests)."""

    async def go() -> None:
        for name in names:
            conn = await asyncpg.connect(dsn(url, name))
            try:
                tables = await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename NOT LIKE 'alembic_version%'"
                )
                if tables:
                    joined = ", ".join(f'"{t["tablename"]}"' for t in tables)
                    await conn.execute(f"TRUNCATE {joined} RESTART IDENTITY CASCADE")
            finally:
                await conn.close()

    asyncio.run(go())
