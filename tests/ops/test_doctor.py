"""`pigeon doctor` on a sound install and on a deliberately broken one: it names every problem
with what to do, and exits 1 when something will not work."""

from __future__ import annotations

import os

import pytest

from pigeon.settings import get_settings
from tests.conftest import POSTGRES_URL
from tests.support.smtp import SmtpServer, closed_port, smtp  # noqa: F401
from tests.test_cli import pigeon  # noqa: F401 - the CLI on a fresh data folder

STRONG = "k" * 20 + "0123456789abcdefghijklmnopqrstuv"


def test_a_sound_install_passes(pigeon, tmp_path, monkeypatch, smtp: SmtpServer):  # noqa: F811
    monkeypatch.setenv("PIGEON_SECRET_KEY", STRONG)
    monkeypatch.setenv("PIGEON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PIGEON_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("PIGEON_SMTP_TLS", "none")
    monkeypatch.setenv("PIGEON_PUBLIC_URL", "https://chat.example.org")
    monkeypatch.delenv("PIGEON_PASSWORD_HASH_TIME_COST")
    monkeypatch.delenv("PIGEON_PASSWORD_HASH_MEMORY_KIB")
    assert pigeon("db", "upgrade").exit_code == 0
    r = pigeon("doctor", "--expected-sockets", "100")
    assert r.exit_code == 0, r.output
    assert "FAIL" not in r.output and "warn" not in r.output
    assert "schema" in r.output and "takes us" in r.output
    assert smtp.messages == []  # it greets the SMTP server and sends nothing


def test_a_broken_install_is_told_what_to_fix(pigeon, tmp_path, monkeypatch):  # noqa: F811
    assert pigeon("db", "upgrade").exit_code == 0
    monkeypatch.setenv("PIGEON_SECRET_KEY", "changeme")
    monkeypatch.setenv("PIGEON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PIGEON_SMTP_PORT", str(closed_port()))
    monkeypatch.setenv("PIGEON_SMTP_TLS", "none")
    monkeypatch.setenv("PIGEON_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    monkeypatch.setenv("PIGEON_PUBLIC_URL", "http://chat.example.org")
    get_settings.cache_clear()
    os.chmod(tmp_path / "data" / "app.db", 0o644)
    r = pigeon("doctor", "--expected-sockets", "10000000")
    assert r.exit_code == 1
    out = r.output
    for said in (
        "short or a well-known value",  # the key
        "can be read by others",  # the database file
        "cannot reach redis://",
        "connection refused",  # SMTP
        "plain HTTP",
        "below OWASP's minimum",
        "live connections need",
    ):
        assert said in out, said
    assert "chmod 600" in out and "LimitNOFILE" in out


@pytest.mark.skipif(not POSTGRES_URL, reason="PIGEON_TEST_POSTGRES_URL is not set")
def test_an_unreachable_database_is_a_failure(pigeon, monkeypatch):  # noqa: F811
    monkeypatch.setenv(
        "PIGEON_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/no_such_pigeon_db"
    )
    r = pigeon("doctor")
    assert r.exit_code == 1
    out = r.output
    assert "app database" in out and "cannot connect" in out and "no_such_pigeon_db" in out
