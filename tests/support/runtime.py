"""A runtime outside any app, for tests that prepare data files before starting a server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from pigeon.core import migrate
from pigeon.core.db import Databases
from pigeon.core.events import InProcessBroker
from pigeon.core.runtime import Runtime
from pigeon.media.storage import open_store
from pigeon.settings import Settings


@asynccontextmanager
async def standalone(
    settings: Settings | None = None, *, data: Path | None = None, upgrade: bool = True
) -> AsyncIterator[Runtime]:
    """Both databases (upgraded unless told not to) and an in-process broker, disposed of on
    leaving."""
    if settings is None:
        settings = Settings(
            data_dir=data or Path("data"),
            registration="open",
            password_hash_time_cost=1,  # people made for a test: hashing need not be slow
            password_hash_memory_kib=64,
            _env_file=None,  # type: ignore[call-arg]
        )
    dbs = Databases(settings.app_db_url, settings.messaging_db_url)
    rt = Runtime(settings, dbs, InProcessBroker(), open_store(settings))
    try:
        if upgrade:
            await migrate.upgrade(dbs.app)
            await migrate.upgrade(dbs.messaging)
        yield rt
    finally:
        await rt.close()
        await dbs.dispose()
