"""Backups and restores, as an operator runs them: taken while members keep sending, brought
back into a fresh install, and every message, account and file compared."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from pigeon.accounts.models import User
from pigeon.core.db import Databases
from pigeon.messaging.models import Attachment, Message
from pigeon.ops import backup as backups
from pigeon.settings import Settings
from tests.media.samples import png
from tests.support.installs import empty_install
from tests.support.people import dm, send


@pytest.fixture
def elsewhere(backend: str, tmp_path: Path, settings: Settings) -> Iterator[Settings]:
    """Settings of a second, empty install on the same kind of database: where a backup is
    restored."""
    with empty_install(backend, tmp_path / "elsewhere", "pigeon_restore") as found:
        yield found


async def everything(settings: Settings) -> dict[str, Any]:
    """What an install holds, as comparable values: people, messages, attachments."""
    dbs = Databases(settings.app_db_url, settings.messaging_db_url)
    try:
        async with dbs.app.read() as session:
            users = [
                (u.id, u.username, u.email, u.password_hash)
                for u in await session.scalars(select(User).order_by(User.id))
            ]
        async with dbs.messaging.read() as session:
            messages = [
                (m.id, m.conversation_id, m.sender_id, m.body)
                for m in await session.scalars(select(Message).order_by(Message.id))
            ]
            files = [
                (a.id, a.storage_key, a.size)
                for a in await session.scalars(select(Attachment).order_by(Attachment.id))
            ]
    finally:
        await dbs.dispose()
    return {"users": users, "messages": messages, "files": files}


async def test_a_backup_taken_under_load_restores_elsewhere_with_nothing_lost(
    app, client, people, settings: Settings, elsewhere: Settings, tmp_path: Path
) -> None:
    conv = await dm(client, people.priv, people.plus)
    photo = await client.post(
        "/api/v1/media/upload",
        files={"file": ("cover.png", png(), "image/png")},
        headers=people.priv.headers,
    )
    assert photo.status_code == 201, photo.text
    r = await send(client, people.priv, conv["id"], "", attachment_ids=[photo.json()["id"]])
    assert r.status_code == 201
    for n in range(30):
        assert (await send(client, people.plus, conv["id"], f"before {n}")).status_code == 201

    sent_during: list[int] = []
    stop = asyncio.Event()

    async def keep_sending() -> None:
        n = 0
        while not stop.is_set():
            r = await send(client, people.priv, conv["id"], f"during {n}")
            assert r.status_code == 201, r.text
            sent_during.append(r.json()["id"])
            n += 1
            await asyncio.sleep(0)

    # the key an install without PIGEON_SECRET_KEY keeps in its data folder
    (settings.data_dir / "secret.key").write_text("the-install-s-own-key")
    load = asyncio.create_task(keep_sending())
    await asyncio.sleep(0.05)
    folder = tmp_path / "backup"
    lines: list[str] = []
    manifest = await backups.backup(settings, folder, say=lines.append)
    stop.set()
    await load
    assert sent_during, "the load ran while the backup was taken"
    assert backups.verify(folder) == []
    assert oct(folder.stat().st_mode & 0o777) == "0o700"

    await backups.restore(elsewhere, folder, force=False, say=lines.append)
    restored = await everything(elsewhere)
    now = await everything(settings)
    # the snapshot is one moment: exactly the messages committed by then, each as it was
    count = manifest["databases"]["messaging"]["counts"]["message"]
    assert len(restored["messages"]) == count
    assert restored["messages"] == now["messages"][:count]
    assert restored["users"] == now["users"]
    assert restored["files"] == now["files"]
    # the photo's bytes came back, and the restored install serves them
    [(_, key, size)] = restored["files"]
    assert (elsewhere.media_dir / key).stat().st_size == size
    assert (elsewhere.data_dir / "secret.key").read_text() == "the-install-s-own-key"


async def test_restore_refuses_a_live_install_and_a_damaged_backup(
    app, client, people, settings: Settings, elsewhere: Settings, tmp_path: Path
) -> None:
    conv = await dm(client, people.priv, people.plus)
    assert (await send(client, people.priv, conv["id"], "hello")).status_code == 201
    folder = tmp_path / "backup"
    await backups.backup(settings, folder, say=lambda _: None)
    # into the install it came from, which holds people: only with force
    with pytest.raises(backups.BackupError, match="holds 7 accounts"):
        await backups.restore(settings, folder, force=False, say=lambda _: None)
    # a folder already used is not written into
    with pytest.raises(backups.BackupError, match="not empty"):
        await backups.backup(settings, folder, say=lambda _: None)
    # a damaged file is found, and nothing is restored from it
    part = manifest_file(folder)
    with part.open("r+b") as f:
        f.seek(part.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    problems = backups.verify(folder)
    assert problems and "does not match its checksum" in problems[0]
    with pytest.raises(backups.BackupError, match="damaged"):
        await backups.restore(elsewhere, folder, force=False, say=lambda _: None)
    assert not (elsewhere.data_dir / "secret.key").exists()
    # an unfinished backup (no manifest) is no backup
    (folder / backups.MANIFEST).unlink()
    with pytest.raises(backups.BackupError, match="not a finished backup"):
        backups.verify(folder)


def manifest_file(folder: Path) -> Path:
    manifest = backups.read_manifest(folder)
    return folder / manifest["databases"]["messaging"]["file"]
