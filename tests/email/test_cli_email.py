"""`pigeon email test` and `pigeon email run`, as an operator runs them, on a fresh data folder."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pigeon.cli import app as cli
from pigeon.settings import get_settings
from tests.support.smtp import SmtpServer, closed_port


@pytest.fixture
def pigeon(tmp_path, monkeypatch, smtp: SmtpServer):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PIGEON_DATA_DIR", str(tmp_path / "data"))
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIGEON_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("PIGEON_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("PIGEON_SMTP_TLS", "none")
    monkeypatch.setenv("PIGEON_SMTP_FROM", "pigeon@example.org")
    monkeypatch.setenv("PIGEON_DEFAULT_COMMUNITY_NAME", "Riverside Books")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        get_settings.cache_clear()
        return runner.invoke(cli, list(args))

    yield invoke
    get_settings.cache_clear()


def test_email_test_sends_through_the_smtp_server(pigeon, smtp: SmtpServer) -> None:
    r = pigeon("email", "test", "reader@example.com")
    assert r.exit_code == 0, r.output
    assert "Sent test email" in r.output and "reader@example.com" in r.output
    [msg] = smtp.messages
    assert msg["To"] == "reader@example.com"
    assert msg["From"] == "Riverside Books <pigeon@example.org>"
    assert msg.get_body(("html",)) is not None

    r = pigeon("email", "run")  # nothing left to send
    assert r.exit_code == 0, r.output
    assert len(smtp.messages) == 1


def test_email_test_says_why_it_failed(pigeon, monkeypatch, smtp: SmtpServer) -> None:
    monkeypatch.setenv("PIGEON_SMTP_PORT", str(closed_port()))
    r = pigeon("email", "test", "reader@example.com")
    assert r.exit_code == 1
    assert "not sent" in r.output and "connection refused" in r.output

    r = pigeon("email", "test", "not an address")
    assert r.exit_code == 1 and "Not an email address" in r.output

    monkeypatch.delenv("PIGEON_SMTP_HOST")
    r = pigeon("email", "test", "reader@example.com")
    assert r.exit_code == 1 and "Email is off" in r.output
    r = pigeon("email", "run")
    assert r.exit_code == 1 and "Email is off" in r.output
    assert smtp.messages == []
