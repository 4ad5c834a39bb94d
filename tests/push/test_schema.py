"""The push tables the migrations build are the ones the models describe, on SQLite and
PostgreSQL alike (a drift would fail on one backend only, in production)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pigeon.models import app_metadata


def _about_push(diff: Any) -> bool:
    text = repr(diff)
    return "push_" in text


async def test_the_migrations_build_the_push_models(app) -> None:
    db = app.state.runtime.dbs.app

    def compare(conn: Any) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, app_metadata))

    async with db.write_engine.connect() as conn:
        diffs = await conn.run_sync(compare)
    assert [d for d in diffs if _about_push(d)] == []
    assert {"push_subscription", "push_preference", "push_cursor"} <= set(app_metadata.tables)
