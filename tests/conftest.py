"""Fixtures: a real database per test (SQLite always, PostgreSQL when configured), the app, and
a few named people to act as.

PostgreSQL runs when PIGEON_TEST_POSTGRES_URL names a server (e.g.
postgresql://postgres@127.0.0.1:5432/test); each run creates its own two databases and drops
them afterwards. Under CI (CI=true) a missing or unreachable server fails the run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from pigeon.core.clock import Clock
from pigeon.core.db import Databases
from tests.support import pg

pytest_plugins = ["tests.support.s3", "tests.support.smtp"]  # s3_server, smtp

POSTGRES_URL = os.environ.get("PIGEON_TEST_POSTGRES_URL")
REDIS_URL = os.environ.get("PIGEON_TEST_REDIS_URL")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

BACKENDS = ["sqlite", "postgres"]


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError("CI needs PIGEON_TEST_POSTGRES_URL: PostgreSQL tests must run")
    if IN_CI and not REDIS_URL:
        raise pytest.UsageError("CI needs PIGEON_TEST_REDIS_URL: Redis tests must run")


@pytest.fixture
def clock() -> Clock:
    """The test's app's clock (every app a test starts may share it): tests move it instead of
    sleeping. Each test has its own, starting at the real time."""
    return Clock()


@pytest.fixture(scope="session")
def postgres_dbs() -> Iterator[tuple[str, str] | None]:
    if not POSTGRES_URL:
        yield None
        return
    names = pg.create_databases(POSTGRES_URL, f"pigeon_test_{uuid.uuid4().hex[:8]}")
    try:
        # both migrated once, as the SQLite template is: a test starts from an install whose
        # messaging database exists, whatever ran before it
        from pigeon.core import migrate

        dbs = Databases(pg.async_url(POSTGRES_URL, names[0]), pg.async_url(POSTGRES_URL, names[1]))

        async def build() -> None:
            await migrate.upgrade(dbs.app)
            await migrate.upgrade(dbs.messaging)
            await dbs.dispose()

        asyncio.run(build())
        yield names
    finally:
        pg.drop_databases(POSTGRES_URL, names)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both SQLite databases migrated once; each test gets a copy."""
    from pigeon.core import migrate

    path = tmp_path_factory.mktemp("template")
    dbs = Databases(f"sqlite+aiosqlite:///{path}/app.db", f"sqlite+aiosqlite:///{path}/messages.db")

    async def build() -> None:
        await migrate.upgrade(dbs.app)
        await migrate.upgrade(dbs.messaging)
        await dbs.dispose()

    asyncio.run(build())
    return path


def copy_template(template: Path, data: Path) -> None:
    """A fresh install's SQLite databases in `data`, from the template migrated once."""
    for name in ("app.db", "messages.db"):
        shutil.copy(template / name, data / name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, postgres_dbs: tuple[str, str] | None) -> str:
    if request.param == "postgres" and postgres_dbs is None:
        pytest.skip("PIGEON_TEST_POSTGRES_URL is not set")
    return str(request.param)


@pytest.fixture
def settings(
    backend: str,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_dbs: tuple[str, str] | None,
):  # type: ignore[no-untyped-def]
    from pigeon.settings import Settings

    data = tmp_path / "data"
    data.mkdir()
    values: dict[str, object] = {
        "data_dir": data,
        "secret_key": "test-secret-" + uuid.uuid4().hex,
        "rate_limits_enabled": False,
        "registration": "open",  # tests of invite mode set "invite"
        "tune_gc": False,
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 64,
        "_env_file": None,
    }
    if backend == "postgres":
        assert postgres_dbs is not None and POSTGRES_URL is not None
        pg.empty_all(POSTGRES_URL, postgres_dbs)
        values["database_url"] = pg.async_url(POSTGRES_URL, postgres_dbs[0])
        values["messaging_database_url"] = pg.async_url(POSTGRES_URL, postgres_dbs[1])
    else:
        copy_template(sqlite_template, data)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
async def app(settings, clock):  # type: ignore[no-untyped-def]
    from pigeon.app import create_app

    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def renewal_by_hand(app):  # type: ignore[no-untyped-def]
    """The test runs the renewal of beliefs itself (`auth.renewal.renew`): the server's own
    job, which looks every second, is stopped, or it would take due beliefs from under the
    test and still be reading them when the test looks."""
    await app.state.renewal.stop()


@pytest.fixture
async def client(app) -> AsyncIterator[AsyncClient]:  # type: ignore[no-untyped-def]
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def people(app, client):  # type: ignore[no-untyped-def]
    """The personas, with messaging switched on by the admin."""
    from tests.support.people import make_people

    return await make_people(app, client)


@pytest.fixture
async def people_off(app, client):  # type: ignore[no-untyped-def]
    """The personas on a fresh install: messaging never switched on."""
    from tests.support.people import make_people

    return await make_people(app, client, messaging_on=False)
