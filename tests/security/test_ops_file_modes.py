"""The embedded databases hold every account and message: they (and their -wal and -shm
files) are readable by the server's user only, like the secret key, from the moment they are
created; files left readable by an older version are narrowed at start-up."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pigeon.app import create_app
from pigeon.settings import Settings
from tests.support.people import make_people


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask (022): files are world-readable unless created otherwise."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def settings_for(data: Path) -> Settings:
    return Settings(
        data_dir=data,
        secret_key="test-secret-" + uuid.uuid4().hex,
        rate_limits_enabled=False,
        tune_gc=False,
        password_hash_time_cost=1,
        password_hash_memory_kib=64,
        _env_file=None,  # type: ignore[call-arg]
    )


async def run_and_write(settings: Settings) -> None:
    """Start the server, write to both databases (so -wal and -shm exist), and stop."""
    from httpx import ASGITransport, AsyncClient

    from tests.support.people import dm, send

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as client:
            people = await make_people(app, client)
            conv = await dm(client, people.priv, people.free)
            assert (await send(client, people.priv, conv["id"], "private")).status_code == 201
            files = sorted(p.name for p in settings.data_dir.iterdir())
            assert {"app.db-wal", "app.db-shm", "messages.db-wal", "messages.db-shm"} <= set(files)
            assert_private(settings.data_dir)


def assert_private(data: Path) -> None:
    for path in sorted(data.glob("*.db*")) + [data / "secret.key"]:
        if path.exists():
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600, f"{path.name} is {oct(mode)}"


async def test_new_databases_are_private_from_the_start(tmp_path, open_umask):
    data = tmp_path / "data"
    settings = settings_for(data)
    settings.signing_key()  # the key file, for comparison
    await run_and_write(settings)
    assert_private(data)


async def test_databases_left_readable_are_narrowed_at_start_up(tmp_path, open_umask):
    data = tmp_path / "data"
    await run_and_write(settings_for(data))
    left = sorted(data.glob("*.db*"))
    assert {p.name for p in left} >= {"app.db", "messages.db"}
    for path in left:
        path.chmod(0o644)  # as an older version left them
    app = create_app(settings_for(data))
    async with app.router.lifespan_context(app):
        assert_private(data)
