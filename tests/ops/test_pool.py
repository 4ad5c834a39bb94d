"""PostgreSQL's pool: a connection the server dropped while it sat idle is replaced before a
request uses it. It is checked only after an idle spell: a check before every use would cost
more round trips than a send's own statements (the figure is `benchmarks/cluster.py sends`)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from pigeon.core.db import Database
from tests.conftest import POSTGRES_URL
from tests.support import pg


@pytest.fixture
def app_url(postgres_dbs: tuple[str, str] | None) -> str:
    if postgres_dbs is None or POSTGRES_URL is None:
        pytest.skip("PIGEON_TEST_POSTGRES_URL is not set")
    return pg.async_url(POSTGRES_URL, postgres_dbs[0])


async def _backend(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _drop(pid: int) -> None:
    assert POSTGRES_URL is not None
    admin = await asyncpg.connect(pg.dsn(POSTGRES_URL))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_dropped_while_idle_is_replaced(app_url: str) -> None:
    db = Database(app_url, name="app", pool_size=1, max_overflow=0, ping_after=0.2)
    try:
        first = await _backend(db)
        await _drop(first)  # the server (or a network in between) ends it while it is pooled
        await asyncio.sleep(0.3)
        second = await _backend(db)  # no error reaches the caller
        assert second != first
        assert await _backend(db) == second  # and the new one is kept
    finally:
        await db.dispose()
