"""The migrations build exactly the tables the models describe, on both databases, and the
newest app revision is reversible: a model changed without its migration (or the other way
round) fails here, not on someone's server."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, create_engine

import pigeon.models  # noqa: F401 - every model registered on its base
from pigeon.core import migrate
from pigeon.core.db import AppBase, Databases, MessagingBase


def differences(url: str, metadata: MetaData) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": migrate._modelled,  # noqa: SLF001 - the env's own filter
                },
            )
            found = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    return [d for d in found if not (d[0] == "remove_table" and "alembic_version" in d[1].name)]


@pytest.fixture
async def migrated(tmp_path: Path) -> Path:
    dbs = Databases(
        f"sqlite+aiosqlite:///{tmp_path}/app.db", f"sqlite+aiosqlite:///{tmp_path}/m.db"
    )
    await migrate.upgrade(dbs.app)
    await migrate.upgrade(dbs.messaging)
    await dbs.dispose()
    return tmp_path


def test_the_models_match_the_migrations(migrated: Path) -> None:
    assert differences(f"sqlite:///{migrated}/app.db", AppBase.metadata) == []
    assert differences(f"sqlite:///{migrated}/m.db", MessagingBase.metadata) == []


async def test_the_account_tokens_revision_goes_down_and_up_again(migrated: Path) -> None:
    dbs = Databases(
        f"sqlite+aiosqlite:///{migrated}/app.db", f"sqlite+aiosqlite:///{migrated}/m.db"
    )
    cfg = migrate.alembic_config(dbs.app)
    down = {"revision": "e3b5c8a1f2d4"}
    async with dbs.app.write_engine.begin() as conn:
        await conn.run_sync(migrate._run, cfg, "downgrade", down)  # noqa: SLF001
    gone = differences(f"sqlite:///{migrated}/app.db", AppBase.metadata)
    assert ("add_table", "account_token") in [(d[0], getattr(d[1], "name", None)) for d in gone]
    await migrate.upgrade(dbs.app)
    await dbs.dispose()
    assert differences(f"sqlite:///{migrated}/app.db", AppBase.metadata) == []
