"""Alembic, driven from code: one history per database, upgraded on a live async connection.

Alembic (with Mako and Pygments beneath it) is loaded only when a database is not at its
head: a server started on databases already upgraded (`make run`, every restart) finds that
out by reading each version table and its history's revision ids from the files, and keeps
the 10 MiB those libraries would hold for its whole life.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import MetaData, inspect, select, text
from sqlalchemy.engine import Connection

from pigeon.core.db import Database, Databases

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 0x5069676E  # PostgreSQL advisory lock: one migrator at a time


def alembic_config(db: Database) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / db.name))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["version_table"] = f"alembic_version_{db.name}"
    return cfg


# kept by hand-written revisions, not by the models: autogenerate must not offer to drop them
UNMODELLED = ("message_fts", "ix_message_body_fts")


def _modelled(name: str | None, type_: str, _parents: Any) -> bool:
    return not (name and type_ in ("table", "index") and name.startswith(UNMODELLED))


def run_env(metadata: MetaData) -> None:
    """The body of each history's env.py (online mode on a shared connection only)."""
    from alembic import context

    cfg = context.config
    connection: Connection | None = cfg.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `pigeon db upgrade`")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=cfg.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_modelled,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection, cfg: Config, action: str, args: dict[str, Any]) -> None:
    from alembic import command

    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    cfg.attributes["connection"] = connection
    getattr(command, action)(cfg, **args)


class SchemaTooNew(Exception):
    """The database was upgraded by a newer release than this one: running on it could write
    what that schema no longer allows, or miss what it requires."""


@functools.cache
def _script(name: str) -> ScriptDirectory:
    """A history's scripts, read once a process: they ship with the code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS / name))
    return ScriptDirectory.from_config(cfg)


@functools.cache
def written_heads(name: str) -> frozenset[str] | None:
    """The head revisions of a history, read from its files' `revision` and `down_revision`
    without Alembic; None when a file says anything this reading does not follow, and
    Alembic then decides."""
    revisions: set[str] = set()
    below: set[str] = set()
    for path in (MIGRATIONS / name / "versions").glob("*.py"):
        said: dict[str, Any] = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, value = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, value = node.target, node.value
            else:
                continue
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    said[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None
        revision, down = said.get("revision"), said.get("down_revision")
        downs = (down,) if isinstance(down, str) or down is None else down
        if not isinstance(revision, str) or not isinstance(downs, tuple):
            return None
        revisions.add(revision)
        below.update(d for d in downs if d is not None)
    return frozenset(revisions - below) or None


async def current_revision(db: Database) -> str | None:
    """The revision `db` is at, read from its version table (None before the first upgrade)."""
    table = f"alembic_version_{db.name}"

    def _read(conn: Connection) -> list[str]:
        if not inspect(conn).has_table(table):
            return []
        return list(conn.execute(text(f"SELECT version_num FROM {table}")).scalars())

    async with db.read_engine.connect() as conn:
        rows = await conn.run_sync(_read)
    if len(rows) > 1:  # as Alembic refuses it: each history here is one line
        raise RuntimeError(f"the {db.name} database is at several revisions at once: {rows}")
    return rows[0] if rows else None


def _known(name: str, current: str | None) -> None:
    from alembic import util

    if current is None:
        return
    script = _script(name)
    try:
        script.get_revision(current)
    except util.CommandError:
        raise SchemaTooNew(
            f"the {name} database is at schema {current}, which this release does not "
            f"know (its latest is {script.get_current_head()}): a newer Pigeon upgraded it. "
            "Run that release again, or restore a backup taken before the upgrade."
        ) from None


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str | None]:
    """Bring `db` to `revision`; SchemaTooNew if a newer release already went past it.
    Returns (the revision before, the revision after)."""
    db.create_file()
    if revision == "head":
        current = await current_revision(db)
        if current is not None and written_heads(db.name) == {current}:
            return current, current  # nothing to run (every start, nearly always)
    cfg = alembic_config(db)
    current, head = await status(db)
    _known(db.name, current)
    if revision == "head" and current == head:
        return current, current
    async with db.write_engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite alters a table by copying it and dropping the old one; with foreign keys
            # on, that drop would cascade into every row that points at it (the memberships of
            # every user, say). Off for the migration (SQLite ignores the switch inside a
            # transaction, so it is thrown on the bare connection), and every reference is
            # checked before the upgrade commits.
            await conn.run_sync(_foreign_keys, False)
        try:
            async with conn.begin():
                await conn.run_sync(_run, cfg, "upgrade", {"revision": revision})
                if sqlite:
                    broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                    if broken:
                        raise RuntimeError(f"the upgrade broke references: {broken[:5]}")
        finally:
            if sqlite:
                await conn.run_sync(_foreign_keys, True)
    return current, (await status(db))[0]


def _foreign_keys(conn: Connection, on: bool) -> None:
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def pending(name: str, current: str | None) -> list[tuple[str, str]]:
    """(revision, what it does) of each migration an upgrade of the `name` database from
    `current` would run, in order; SchemaTooNew if `current` is past this release."""
    _known(name, current)
    script = _script(name)
    steps = script.iterate_revisions(script.get_current_head(), current or "base")
    return [(r.revision, (r.doc or "").strip()) for r in reversed(list(steps))]


async def revision(db: Database, message: str) -> None:
    """Autogenerate a new revision against the current schema (for developers)."""
    cfg = alembic_config(db)
    async with db.write_engine.begin() as conn:
        await conn.run_sync(_run, cfg, "revision", {"message": message, "autogenerate": True})


class Said(NamedTuple):
    """What an upgrade did to one database, in words, and whether it changed anything."""

    text: str
    changed: bool = False

    def __str__(self) -> str:
        return self.text


async def upgrade_databases(dbs: Databases) -> dict[str, Said]:
    """What the server and the CLI do first: the primary database created or upgraded, and
    the messaging one only once it exists or messaging is on (a community that never switched
    messaging on holds no messaging database). Says what happened to each."""
    said = {"app": await _upgrade_saying(dbs.app)}
    if await exists(dbs.messaging) or await _messaging_on(dbs.app):
        said["messaging"] = await _upgrade_saying(dbs.messaging)
    else:
        said["messaging"] = Said(
            "not created: messaging is off (`pigeon messaging enable` creates it)"
        )
    return said


async def _upgrade_saying(db: Database) -> Said:
    before, after = await upgrade(db)
    if before is None:
        return Said(f"created at {after}", changed=True)
    if before != after:
        return Said(f"upgraded from {before} to {after}", changed=True)
    return Said(f"at {after}, the latest")


async def _messaging_on(app: Database) -> bool:
    from pigeon.core.switches import MESSAGING_ENABLED, Setting

    async with app.read() as session:
        value = await session.scalar(select(Setting.value).where(Setting.key == MESSAGING_ENABLED))
    return bool(value)


async def exists(db: Database) -> bool:
    """Whether `db` has a schema, found without creating anything (a missing SQLite file is
    not opened)."""
    if db.file_missing():
        return False
    return await current_revision(db) is not None


async def status(db: Database) -> tuple[str | None, str | None]:
    """(current revision, head revision) of one database."""
    return await current_revision(db), _script(db.name).get_current_head()
