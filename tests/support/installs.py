"""A second, empty install for a test: its own data folder, and on PostgreSQL its own two
databases (created empty, dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pigeon.settings import Settings
from tests.support import pg

POSTGRES_URL = os.environ.get("PIGEON_TEST_POSTGRES_URL")


@contextmanager
def empty_install(backend: str, data: Path, prefix: str, **values: Any) -> Iterator[Settings]:
    values = {"data_dir": data, "_env_file": None, **values}
    names = None
    if backend == "postgres":
        assert POSTGRES_URL is not None
        names = pg.create_databases(POSTGRES_URL, f"{prefix}_{uuid.uuid4().hex[:8]}")
        values["database_url"] = pg.async_url(POSTGRES_URL, names[0])
        values["messaging_database_url"] = pg.async_url(POSTGRES_URL, names[1])
    try:
        yield Settings(**values)
    finally:
        if names is not None:
            assert POSTGRES_URL is not None
            pg.drop_databases(POSTGRES_URL, names)
