"""The migrations build exactly the schema the models describe, on both backends: a model
changed without its migration (or the reverse) fails here, not in production."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData

from pigeon.core.db import Database
from pigeon.core.migrate import _modelled
from pigeon.models import app_metadata, messaging_metadata


def differences(db: Database, metadata: MetaData) -> Any:
    def compare(conn: Any) -> Any:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": _modelled,
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
