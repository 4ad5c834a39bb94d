"""`pigeon backup`, `pigeon backup --verify` and `pigeon restore`, as an operator types them."""

from __future__ import annotations

import sqlite3

from tests.test_cli import pigeon  # noqa: F401 - the CLI on a fresh data folder


def test_backup_verify_and_restore_from_the_command_line(pigeon, tmp_path, monkeypatch):  # noqa: F811
    assert pigeon("demo").exit_code == 0
    folder = tmp_path / "backup"
    r = pigeon("backup", str(folder))
    assert r.exit_code == 0, r.output
    assert "messaging database:" in r.output and "Backed up into" in r.output
    r = pigeon("backup", "--verify", str(folder))
    assert r.exit_code == 0 and "whole" in r.output, r.output

    # the install it came from holds people: restoring over it needs --force
    r = pigeon("restore", str(folder))
    assert r.exit_code == 1 and "--force" in r.output
    # a fresh data folder takes it as it is
    monkeypatch.setenv("PIGEON_DATA_DIR", str(tmp_path / "fresh"))
    from pigeon.settings import get_settings

    get_settings.cache_clear()
    r = pigeon("restore", str(folder))
    assert r.exit_code == 0, r.output
    source = sqlite3.connect(tmp_path / "data" / "messages.db")
    copy = sqlite3.connect(tmp_path / "fresh" / "messages.db")
    query = "SELECT id, sender_id, body FROM message ORDER BY id"
    assert copy.execute(query).fetchall() == source.execute(query).fetchall() != []
    r = pigeon("users", "list")
    assert r.exit_code == 0 and "maria" in r.output

    # a damaged backup is named as such, with what is wrong
    (folder / "app.db").write_bytes(b"not a database")
    r = pigeon("backup", "--verify", str(folder))
    assert r.exit_code == 1 and "does not match its checksum" in r.output
    r = pigeon("backup", "--verify", str(tmp_path / "nowhere"))
    assert r.exit_code == 1 and "not a finished backup" in r.output
