"""The migrations build exactly the tables the models describe, on both databases and both
backends, and the newest app revision is reversible: a model changed without its migration (or
the other way round) fails here, not on someone's server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine

from pigeon.core import migrate
from pigeon.core.db import Database, Databases
from pigeon.models import app_metadata, messaging_metadata


def differences(db: Database, metadata: MetaData) -> Any:
    def compare(conn: Any) -> Any:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": migrate._modelled,  # noqa: SLF001 - the env's own filter
                "version_table": f"alembic_version_{db.name}",
            },
        )
        return compare_metadata(context, metadata)

    return compare


async def test_the_migrated_schema_is_the_models(app) -> None:
    """`app` has upgraded both databases of this backend to the latest migration."""
    dbs = app.state.runtime.dbs
    for db, metadata in ((dbs.app, app_metadata), (dbs.messaging, messaging_metadata)):
        async with db.write_engine.connect() as conn:
            found = await conn.run_sync(differences(db, metadata))
        assert found == [], f"{db.name}: {found}"


async def test_the_newest_app_revision_goes_down_and_up_again(tmp_path: Path) -> None:
    dbs = Databases(
        f"sqlite+aiosqlite:///{tmp_path}/app.db", f"sqlite+aiosqlite:///{tmp_path}/m.db"
    )
    await migrate.upgrade(dbs.app)
    cfg = migrate.alembic_config(dbs.app)
    head = ScriptDirectory.from_config(cfg).get_revision("head")
    async with dbs.app.write_engine.begin() as conn:
        await conn.run_sync(
            migrate._run,  # noqa: SLF001
            cfg,
            "downgrade",
            {"revision": head.down_revision},
        )
    engine = create_engine(f"sqlite:///{tmp_path}/app.db")
    with engine.connect() as conn:
        gone = differences(dbs.app, app_metadata)(conn)
    engine.dispose()
    assert gone, "going down one revision changed nothing"
    await migrate.upgrade(dbs.app)
    async with dbs.app.write_engine.connect() as conn:
        assert await conn.run_sync(differences(dbs.app, app_metadata)) == []
    await dbs.dispose()
