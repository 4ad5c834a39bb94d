"""The operator's commands: `pigeon retention run` and `pigeon users export`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import zipfile
from pathlib import Path

from tests.safety.test_ratelimit_processes import PIGEON, prepare


def pigeon(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PIGEON_DATA_DIR": str(data), "COLUMNS": "120"}
    env = {k: v for k, v in env.items() if not k.startswith("PIGEON_") or k == "PIGEON_DATA_DIR"}
    return subprocess.run(
        [str(PIGEON), *args], env=env, cwd=data.parent, capture_output=True, text=True, timeout=60
    )


def say_hello(data: Path, ids: dict[str, int]) -> None:
    from pigeon.messaging import sending
    from pigeon.messaging import service as messaging
    from pigeon.messaging.send_tx import make_send_path
    from tests.support.acting import acting_as
    from tests.support.runtime import standalone

    async def go() -> None:
        async with standalone(data=data) as rt:
            sends = make_send_path(rt.dbs.messaging)
            try:
                async with acting_as(rt, sends, ids["pat"]) as ctx:
                    conv_id, _ = await messaging.start_direct(ctx, ids["fay"])
                async with acting_as(rt, sends, ids["pat"]) as ctx:
                    await sending.send_message(ctx, conv_id, body="hello fay")
            finally:
                sends.close()

    asyncio.run(go())


def test_retention_run_and_users_export(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ids = prepare(data)
    say_hello(data, ids)

    out = pigeon(data, "users", "export", "fay", "--output", str(tmp_path / "fay.zip"))
    assert out.returncode == 0, out.stderr
    exported = json.loads(zipfile.ZipFile(tmp_path / "fay.zip").read("export.json"))
    assert exported["profile"]["username"] == "fay"
    assert [m["body"] for m in exported["conversations"][0]["messages"]] == ["hello fay"]

    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=200)).date().isoformat()
    out = pigeon(data, "retention", "run", "--dry-run", "--as-of", later)
    assert out.returncode == 0, out.stderr
    assert "dry run" in out.stdout
    assert "messages soft-deleted" in out.stdout and "│ 1" in out.stdout

    out = pigeon(data, "retention", "run", "--as-of", later)
    assert out.returncode == 0, out.stderr
    out = pigeon(data, "users", "export", "fay", "--output", str(tmp_path / "after.zip"))
    after = json.loads(zipfile.ZipFile(tmp_path / "after.zip").read("export.json"))
    assert after["conversations"][0]["messages"] == []

    out = pigeon(data, "retention", "run", "--as-of", "not-a-date")
    assert out.returncode == 2 and "not a date" in out.stderr
    out = pigeon(data, "users", "export", "nobody")
    assert out.returncode == 1 and "nobody" in out.stderr


def test_retention_run_refuses_while_another_process_runs_it(tmp_path: Path) -> None:
    from pigeon.core.db import Databases
    from pigeon.core.leases import acquire_lease
    from pigeon.messaging import retention

    data = tmp_path / "data"
    data.mkdir()
    prepare(data)

    async def hold() -> None:
        dbs = Databases(
            f"sqlite+aiosqlite:///{data}/app.db", f"sqlite+aiosqlite:///{data}/messages.db"
        )
        try:
            assert await acquire_lease(
                dbs.app, retention.LEASE, "elsewhere:1", 600, now=dt.datetime.now(dt.UTC)
            )
        finally:
            await dbs.dispose()

    asyncio.run(hold())
    out = pigeon(data, "retention", "run")
    assert out.returncode == 1 and "Another process is running retention" in out.stderr
