"""Back up and restore an install: both databases, the media store and the keys, with a
manifest that says what is there and lets `verify` prove it unchanged.

Consistency. Each database is copied as one snapshot taken while the server runs and writes:
SQLite through its online backup API (one step, so one read transaction), PostgreSQL with
`pg_dump --snapshot`, beside which the counts are read in the same exported snapshot. The two
databases are copied one after the other, messaging first: a message names people, and people
are never removed (a deleted account stays as a tombstone), so everyone a backed-up message
names is in the primary database copied after it. The media store is copied last for the same
reason: every file a backed-up message names is there (a file added since is an unnamed upload,
which the server sweeps). The manifest is written last, so a folder without one is no backup.

Restore puts each part back where the settings say the install lives, after checking every
checksum, and refuses to overwrite an install that holds anyone unless told to (`force`). The
server must be stopped while it runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import URL, make_url

from pigeon import __version__
from pigeon.core.blobs import MediaMissing
from pigeon.core.db import Database
from pigeon.core.switches import record_backup
from pigeon.media.storage import open_store
from pigeon.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
# files of the data folder that must come back for the install to be the same one: the
# signing key (sessions, unsubscribe links)
KEY_FILES = ("secret.key",)
# what is counted in each database, to compare after a restore
COUNTED = {
    "app": ("user", "community", "membership", "block", "audit_log"),
    "messaging": ("conversation", "participant", "message", "attachment", "reaction"),
}
FAR_FUTURE = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


class BackupError(Exception):
    """What stops a backup or a restore, said so that an operator can act on it."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where one database lives: a SQLite file or a PostgreSQL database."""

    name: str  # "app" | "messaging"
    url: URL

    @property
    def sqlite(self) -> bool:
        return self.url.drivername.startswith("sqlite")

    @property
    def path(self) -> Path:
        return Path(self.url.database or "")

    @property
    def dsn(self) -> str:
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def tool_args(self) -> tuple[list[str], dict[str, str]]:
        """The database for pg_dump and pg_restore: the password in the environment, not in
        the command line, where anyone on the machine could read it."""
        url = self.url.set(drivername="postgresql", password=None)
        env = {"PGPASSWORD": self.url.password} if self.url.password else {}
        return [f"--dbname={url.render_as_string(hide_password=False)}"], env

    @property
    def file(self) -> str:
        return f"{self.name}.db" if self.sqlite else f"{self.name}.dump"


def targets(settings: Settings) -> list[Target]:
    """Messaging first: see the module's note on consistency."""
    return [
        Target("messaging", make_url(settings.messaging_db_url)),
        Target("app", make_url(settings.app_db_url)),
    ]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- backup ---------------------------------------------------------------------------------


async def backup(settings: Settings, folder: Path, *, say: Callable[[str], None] = print) -> dict:
    """Write a backup of the install into `folder` (new, or empty); returns its manifest."""
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty; back up into a new folder.")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "pigeon_version": __version__,
        "started_at": _now(),
        "databases": {},
    }
    for target in targets(settings):
        part = await _backup_database(target, folder)
        manifest["databases"][target.name] = part
        if part.get("absent"):
            say(f"{target.name} database: none yet (messaging never switched on)")
        else:
            say(f"{target.name} database: {_counts_text(part['counts'])}")
    manifest["media"] = await _backup_media(settings, folder / "media")
    say(f"media: {manifest['media']['files']} files, {manifest['media']['bytes']} bytes")
    manifest["keys"] = _backup_keys(settings, folder)
    manifest["finished_at"] = _now()
    _write_json(folder / MANIFEST, manifest)
    await _record(settings, folder, manifest["finished_at"])
    return manifest


async def _record(settings: Settings, folder: Path, at: str) -> None:
    """Note the backup in the primary database, for /metrics (`pigeon_last_backup_...`) and
    whoever alerts on a backup grown old."""
    db = Database(settings.app_db_url, name="app")
    try:
        if db.file_missing():
            return
        value = {"at": at, "folder": str(folder)}
        await record_backup(db, value, dt.datetime.now(dt.UTC))
    finally:
        await db.dispose()


async def _backup_database(target: Target, folder: Path) -> dict[str, Any]:
    out = folder / target.file
    if target.sqlite:
        if not target.path.exists():
            return {"kind": "sqlite", "absent": True}
        counts, schema = await asyncio.to_thread(_sqlite_snapshot, target.path, out)
        part = {"kind": "sqlite"}
    else:
        counts, schema = await _pg_snapshot(target, out)
        part = {"kind": "postgresql"}
    return {
        **part,
        "file": target.file,
        "bytes": out.stat().st_size,
        "sha256": await asyncio.to_thread(sha256_file, out),
        "schema": schema,
        "counts": counts,
    }


def _sqlite_snapshot(source: Path, out: Path) -> tuple[dict[str, int], str | None]:
    """The online backup API, in one step: a single read transaction, so one moment's data,
    while the server goes on writing (WAL readers do not block writers)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        found = _sqlite_counts(dst), _sqlite_schema(dst)
    finally:
        dst.close()
        src.close()
    os.chmod(out, 0o600)
    return found


def _sqlite_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {
        table: conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        for table in sorted(names & set(COUNTED["app"] + COUNTED["messaging"]))
    }


def _sqlite_schema(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return row[0] if row else None


async def _pg_snapshot(target: Target, out: Path) -> tuple[dict[str, int], str | None]:
    """Counts and schema read in a snapshot exported to `pg_dump`, so the file and the
    manifest describe the same moment."""
    conn = await asyncpg.connect(target.dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            tables = {
                r["tablename"]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                )
            }
            counts = {
                table: await conn.fetchval(f'SELECT count(*) FROM "{table}"')
                for table in sorted(tables & set(COUNTED[target.name]))
            }
            schema = None
            if "alembic_version" in tables:
                schema = await conn.fetchval("SELECT version_num FROM alembic_version")
            db, env = target.tool_args
            await _run(
                "pg_dump",
                "--format=custom",
                "--no-owner",
                f"--snapshot={snapshot}",
                f"--file={out}",
                *db,
                env=env,
            )
    finally:
        await conn.close()
    os.chmod(out, 0o600)
    return counts, schema


async def _backup_media(settings: Settings, folder: Path) -> dict[str, Any]:
    store = open_store(settings)
    files: dict[str, str] = {}
    size = 0
    try:
        for key in sorted(await store.keys(FAR_FUTURE)):
            path = folder / key
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            digest = hashlib.sha256()
            try:
                chunks = await store.stream(key)
            except MediaMissing:  # swept between the listing and now
                continue
            with path.open("wb") as f:
                async for chunk in chunks:
                    f.write(chunk)
                    digest.update(chunk)
            os.chmod(path, 0o600)
            files[key] = digest.hexdigest()
            size += path.stat().st_size
    finally:
        await store.close()
    return {"store": store.name, "files": len(files), "bytes": size, "sha256": files}


def _backup_keys(settings: Settings, folder: Path) -> dict[str, Any]:
    keys: dict[str, Any] = {"files": {}}
    for name in KEY_FILES:
        source = settings.data_dir / name
        if source.exists():
            shutil.copy2(source, folder / name)
            os.chmod(folder / name, 0o600)
            keys["files"][name] = sha256_file(folder / name)
    if settings.secret_key and not (settings.data_dir / "secret.key").exists():
        keys["note"] = "the signing key comes from PIGEON_SECRET_KEY; keep it with the backup"
    return keys


# --- verify ---------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.exists():
        raise BackupError(f"{folder} holds no {MANIFEST}: not a finished backup.")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is in format {manifest.get('format')!r}; expected {FORMAT}.")
    return manifest


def verify(folder: Path) -> list[str]:
    """Every problem found with the backup in `folder`; empty when it is whole."""
    manifest = read_manifest(folder)
    problems: list[str] = []

    def check(path: Path, expected: str, what: str) -> bool:
        if not path.exists():
            problems.append(f"{what} is missing ({path.name})")
            return False
        if sha256_file(path) != expected:
            problems.append(f"{what} does not match its checksum ({path.name})")
            return False
        return True

    for name, part in manifest["databases"].items():
        if part.get("absent"):
            continue
        path = folder / part["file"]
        if check(path, part["sha256"], f"the {name} database") and part["kind"] == "sqlite":
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    problems.append(f"the {name} database fails SQLite's integrity check")
                elif _sqlite_counts(conn) != part["counts"]:
                    problems.append(f"the {name} database's counts differ from the manifest")
            finally:
                conn.close()
    for key, digest in manifest["media"]["sha256"].items():
        check(folder / "media" / key, digest, f"media file {key}")
    for name, digest in manifest["keys"]["files"].items():
        check(folder / name, digest, f"the key file {name}")
    return problems


# --- restore --------------------------------------------------------------------------------


async def restore(
    settings: Settings, folder: Path, *, force: bool, say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Bring back the backup in `folder` into the install the settings name; returns the
    manifest. Refuses a damaged backup, and an install that holds anyone unless `force`."""
    manifest = read_manifest(folder)
    problems = await asyncio.to_thread(verify, folder)
    if problems:
        raise BackupError("the backup is damaged: " + "; ".join(problems))
    if not force:
        people = await _people_in(targets(settings)[1])
        if people:
            raise BackupError(
                f"this install holds {people} accounts; restoring would replace them. "
                "Stop the server, and run again with --force to overwrite it."
            )
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for target in targets(settings):
        part = manifest["databases"][target.name]
        await _restore_database(target, folder, part)
        say(
            f"{target.name} database restored"
            if not part.get("absent")
            else f"{target.name} database: none in the backup"
        )
    restored = await _restore_media(settings, folder / "media", manifest["media"]["sha256"])
    say(f"media: {restored} files restored")
    for name in manifest["keys"]["files"]:
        dest = settings.data_dir / name
        shutil.copy2(folder / name, dest)
        os.chmod(dest, 0o600)
    return manifest


async def _people_in(target: Target) -> int:
    if target.sqlite:
        if not target.path.exists():
            return 0
        return await asyncio.to_thread(_sqlite_people, target.path)
    conn = await asyncpg.connect(target.dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('public.user') IS NOT NULL"):
            return 0
        return int(await conn.fetchval('SELECT count(*) FROM "user"'))
    finally:
        await conn.close()


def _sqlite_people(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute('SELECT count(*) FROM "user"').fetchone()[0])
    except sqlite3.OperationalError:  # no tables yet
        return 0
    finally:
        conn.close()


async def _restore_database(target: Target, folder: Path, part: dict[str, Any]) -> None:
    if target.sqlite:
        for suffix in ("-wal", "-shm"):  # the old file's journal must not replay onto the new
            Path(f"{target.path}{suffix}").unlink(missing_ok=True)
        if part.get("absent"):
            target.path.unlink(missing_ok=True)
            return
        target.path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=target.path.parent, prefix=".restore-")
        os.close(fd)
        shutil.copyfile(folder / part["file"], temp)
        os.chmod(temp, 0o600)
        os.replace(temp, target.path)
        return
    if part.get("absent"):
        return
    db, env = target.tool_args
    await _run(
        "pg_restore",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        *db,
        str(folder / part["file"]),
        env=env,
    )


async def _restore_media(settings: Settings, folder: Path, files: dict[str, str]) -> int:
    store = open_store(settings)
    try:
        for key in files:
            await store.save(key, folder / key, "application/octet-stream")
    finally:
        await store.close()
    return len(files)


# --- helpers --------------------------------------------------------------------------------


async def _run(*command: str, env: dict[str, str]) -> None:
    """Run a PostgreSQL client tool; its complaint, if any, becomes the error."""
    try:
        done = await asyncio.to_thread(
            subprocess.run,
            list(command),
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **env},
        )
    except FileNotFoundError:
        raise BackupError(f"{command[0]} is not installed (PostgreSQL's client tools)") from None
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed: {done.stderr.strip()[:2000]}")


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {table}" for table, n in counts.items()) or "empty"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(data, indent=2, sort_keys=True))
    os.chmod(temp, 0o600)
    os.replace(temp, path)
