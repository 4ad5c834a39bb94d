"""The operator's CLI, run as an operator would, on a fresh data folder."""

import hashlib
import os
import re
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import pytest
from typer.testing import CliRunner

from pigeon.cli import app as cli
from pigeon.settings import get_settings


@pytest.fixture
def pigeon(tmp_path, monkeypatch):
    monkeypatch.setenv("PIGEON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIGEON_PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PIGEON_PASSWORD_HASH_MEMORY_KIB", "64")
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args, input=None):
        return runner.invoke(cli, list(args), input=input)

    yield invoke
    get_settings.cache_clear()


def test_db_upgrade_creates_both_databases_in_wal_mode(pigeon, tmp_path):
    r = pigeon("db", "upgrade")
    assert r.exit_code == 0, r.output
    assert "app: created at" in r.output
    # the messaging database waits for messaging to be switched on
    assert "messaging: not created: messaging is off" in r.output
    assert not (tmp_path / "data" / "messages.db").exists()
    r = pigeon("db", "upgrade")
    assert "app: at" in r.output and "the latest" in r.output
    r = pigeon("messaging", "enable")
    assert r.exit_code == 0 and "Created the messaging database." in r.output, r.output
    r = pigeon("db", "upgrade")
    assert "messaging: at" in r.output and "the latest" in r.output
    for name in ("app.db", "messages.db"):
        conn = sqlite3.connect(tmp_path / "data" / name)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()
        assert (tmp_path / "data" / name).stat().st_mode & 0o077 == 0
    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "data" / "app.db").execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"user", "community", "setting", "audit_log", "refresh_token", "block"} <= tables
    assert "message" not in tables
    tables = {
        r[0]
        for r in sqlite3.connect(tmp_path / "data" / "messages.db").execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"conversation", "participant", "message"} <= tables
    assert "user" not in tables


def test_admin_create_tiers_roles_and_the_switch(pigeon, tmp_path):
    r = pigeon("messaging", "status")
    assert r.exit_code == 0 and "off" in r.output
    r = pigeon(
        "admin",
        "create",
        "--email",
        "boss@example.com",
        "--username",
        "boss",
        "--password",
        "a fine password",
    )
    assert r.exit_code == 0, r.output
    assert "Created admin boss" in r.output
    # prompts for what is left out
    r = pigeon(
        "admin",
        "create",
        "--email",
        "two@example.com",
        "--username",
        "second",
        input="another password\nanother password\n",
    )
    assert r.exit_code == 0, r.output
    r = pigeon(
        "admin",
        "create",
        "--email",
        "boss2@example.com",
        "--username",
        "boss",
        "--password",
        "a fine password",
    )
    assert r.exit_code == 1 and "taken" in r.output
    r = pigeon("admin", "create", "--email", "nope", "--username", "x", "--password", "short")
    assert r.exit_code == 1 and "email" in r.output

    r = pigeon("users", "set-tier", "boss", "free")
    assert r.exit_code == 0 and "privileged_plus → free" in r.output
    r = pigeon("users", "set-tier", "boss", "gold")
    assert r.exit_code == 2 and "tier must be one of" in r.output
    r = pigeon("users", "set-role", "nobody", "manager")
    assert r.exit_code == 1 and "No user called" in r.output
    r = pigeon("users", "set-role", "second", "manager")
    assert r.exit_code == 0
    r = pigeon("users", "set-role", "boss", "member")  # the only admin left
    assert r.exit_code == 1 and "last admin" in r.output

    r = pigeon("messaging", "enable")
    assert r.exit_code == 0 and "on" in r.output
    r = pigeon("messaging", "status")
    assert "Messaging is on" in r.output
    r = pigeon("messaging", "disable")
    assert r.exit_code == 0 and "off" in r.output

    db = sqlite3.connect(tmp_path / "data" / "app.db")
    actions = [row[0] for row in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == [
        "admin.created",
        "admin.created",
        "user.tier",
        "user.role",
        "messaging.enabled",
        "messaging.disabled",
    ]
    labels = {row[0] for row in db.execute("SELECT actor_label FROM audit_log")}
    assert all(label.startswith("cli") for label in labels)


def test_demo_loads_once(pigeon, tmp_path):
    r = pigeon("demo", "--if-empty")
    assert r.exit_code == 0 and "pigeon-demo" in r.output
    r = pigeon("demo", "--if-empty")
    assert r.exit_code == 0 and "not loaded" in r.output
    db = sqlite3.connect(tmp_path / "data" / "app.db")
    tiers = {row for row in db.execute("SELECT tier, role FROM user")}
    assert {
        ("free", "member"),
        ("privileged", "member"),
        ("privileged_plus", "member"),
        ("privileged", "manager"),
        ("privileged_plus", "admin"),
    } <= tiers
    assert db.execute("SELECT count(*) FROM community").fetchone()[0] == 2
    msgs = sqlite3.connect(tmp_path / "data" / "messages.db")
    assert msgs.execute("SELECT count(*) FROM conversation").fetchone()[0] >= 3
    r = pigeon("messaging", "status")
    assert "Messaging is on" in r.output


def test_invite_prints_a_working_link_once_and_is_audited(pigeon, tmp_path, monkeypatch):
    monkeypatch.setenv("PIGEON_PUBLIC_URL", "https://chat.example.org")
    assert pigeon("demo", "--if-empty").exit_code == 0
    r = pigeon("invite", "New@Example.com", "--community", "riverside", "--tier", "privileged")
    assert r.exit_code == 0, r.output
    found = re.search(r"https://chat\.example\.org/register\?invitation=([A-Za-z0-9_-]+)", r.output)
    assert found and "new@example.com" in r.output
    db = sqlite3.connect(tmp_path / "data" / "app.db")
    row = db.execute("SELECT email, tier, inviter_id, token_hash FROM invitation").fetchone()
    assert row[:3] == ("new@example.com", "privileged", None)
    assert row[3] == hashlib.sha256(found.group(1).encode()).hexdigest()  # only the digest kept
    [(label,)] = db.execute("SELECT actor_label FROM audit_log WHERE action = 'invitation.sent'")
    assert label.startswith("cli")
    assert pigeon("invite", "x@example.com", "--community", "nowhere").exit_code == 1
    assert pigeon("invite", "x@example.com", "--tier", "gold").exit_code == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_alone_adds_no_data(tmp_path):
    port = _free_port()
    env = {**os.environ, "PIGEON_DATA_DIR": str(tmp_path / "data")}
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        env.pop(var, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pigeon.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        assert r.status_code == 200
        r = httpx.post(
            f"http://127.0.0.1:{port}/api/v1/auth/login",
            json={"login": "admin", "password": "pigeon-demo"},
        )
        assert r.status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    db = sqlite3.connect(tmp_path / "data" / "app.db")
    assert db.execute("SELECT count(*) FROM user").fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM setting").fetchone()[0] == 0
    # messaging is off: its database was not made (and /readyz was ready without it)
    assert not (tmp_path / "data" / "messages.db").exists()


def test_enabling_creates_a_missing_messaging_database(pigeon, tmp_path):
    assert pigeon("db", "upgrade").exit_code == 0
    data = tmp_path / "data"
    for path in data.glob("messages.db*"):
        path.unlink()
    import asyncio

    from pigeon.admin import service as admin
    from pigeon.core import migrate
    from tests.support.runtime import standalone

    async def enable() -> tuple[str | None, str | None]:
        async with standalone(data=data, upgrade=False) as rt:
            async with rt.uow_scope() as uow:
                await admin.set_messaging(rt, uow, True, actor_id=None, actor_label="test")
            return await migrate.status(rt.dbs.messaging)

    current, head = asyncio.run(enable())
    assert current == head is not None
    tables = {
        r[0]
        for r in sqlite3.connect(data / "messages.db").execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        )
    }
    assert {"conversation", "participant", "message"} <= tables
