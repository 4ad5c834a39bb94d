"""Both databases: engines and sessions.

SQLite (the embedded default) gets WAL, fsync on every commit, and a single writer connection
per process that opens transactions with BEGIN IMMEDIATE, so concurrent requests queue for the
write lock instead of failing with "database is locked"; readers use their own pool. On
PostgreSQL one pool serves both. Requests write through the unit of work (`core.uow`); the CLI
and background jobs may open a transaction of their own with `Database.write()`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar, cast

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Connection, CursorResult, Engine, Result, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from pigeon.core.errors import AppError

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class AppBase(DeclarativeBase):
    """Tables of the primary database."""

    metadata = MetaData(naming_convention=NAMING)


class MessagingBase(DeclarativeBase):
    """Tables of the messaging database."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


T = TypeVar("T")
log = logging.getLogger("pigeon.db")


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE touched (its result is a cursor result)."""
    return int(cast(CursorResult[Any], result).rowcount or 0)


def sqlite_pragmas(engine: AsyncEngine | Engine, *, immediate: bool | None) -> None:
    """WAL, fsync on commit, foreign keys, a busy timeout; and who opens transactions: BEGIN
    IMMEDIATE for a writer, BEGIN for a reader, or (None) nobody, for in-place lookups of one
    statement each, which SQLite runs as their own consistent read."""
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine

    @event.listens_for(sync, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.close()

    if immediate is None:
        return

    @event.listens_for(sync, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# statements each SQLite connection keeps prepared (Python's default is 128). A list of n ids
# is its own statement for each n, so over a long run the caches filled with variants at about
# 6 KiB each: half of SQLite's memory after four minutes of the soak (13.7 MiB against 7.0
# with 16), and still growing. The hot statements stay in 16; sends/s did not move
SQLITE_STATEMENTS = 16

PING_AFTER = 2.0  # seconds a pooled PostgreSQL connection may sit idle and be used unchecked


class DatabaseUnavailable(AppError):
    """The connection to the database was lost (the server restarted, a failover, a network
    cut) or cannot be made. Clients get a 503 that says so, with Retry-After: what was under
    way may or may not have been kept, and sending it again is safe (a send with the same
    `client_msg_id` is kept once)."""

    status = 503
    code = "database_unavailable"
    message = "The database cannot be reached right now; try again shortly."

    def __init__(self, detail: str) -> None:
        super().__init__(headers={"Retry-After": "1"})
        self.detail = detail  # the driver's words: for the log and `pigeon doctor`

    def __str__(self) -> str:
        return self.detail


class Outages:
    """When a connection to the database server was last found lost, by any engine that
    shares this: every connection pooled before then is checked before its next use."""

    def __init__(self) -> None:
        self.last = float("-inf")  # monotonic


def check_before_use(engine: AsyncEngine, after: float, outages: Outages) -> None:
    """Check a pooled connection before use if it sat idle for `after` seconds or more, or
    was pooled before a connection was last found lost: one that PostgreSQL (or a network in
    between) dropped meanwhile is replaced, and the request never sees it. One the server
    closed is replaced without a check (the driver knows it closed). A connection in steady
    use is not checked otherwise: the check costs three round trips (the driver's ping is
    BEGIN, a statement, ROLLBACK), more than a send's own statements. So when the server
    restarts, the statements under way at that moment fail, and those alone: each answers
    `DatabaseUnavailable`, and every other pooled connection (of every database on
    `outages`) is checked before it is used again."""
    import asyncpg  # type: ignore[import-untyped]

    sync = engine.sync_engine
    dialect = sync.dialect
    # connecting fails: the server is down, starting, stopping or full, or refuses this
    # database (the driver's words say which, in the log and in `pigeon doctor`)
    unreachable = (OSError, TimeoutError, asyncpg.PostgresError)

    @event.listens_for(sync, "do_connect")
    def _connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except unreachable as exc:
            raise DatabaseUnavailable(str(exc)) from exc

    @event.listens_for(sync, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        # a connection the server closed (a restart, a terminated backend) is known closed as
        # soon as the event loop has read its end: no round trip to find that out
        if dbapi_conn.driver_connection.is_closed():
            raise DisconnectionError("connection closed by the server")
        since = record.info.get("idle_since")
        if since is None or (time.monotonic() - since < after and since > outages.last):
            return
        try:
            dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool drops it and checks out another
            raise DisconnectionError("idle connection lost") from exc

    @event.listens_for(sync, "handle_error")
    def _lost(context: Any) -> None:
        if context.is_disconnect:  # SQLAlchemy invalidates the connection, then this is raised
            outages.last = time.monotonic()
            lost = context.original_exception
            raise DatabaseUnavailable(f"connection lost: {lost}") from lost


# asyncpg knows how to read and write `integer[]` and `bigint[]` only once it has asked the
# server about them: a recursive query of the catalog, about 8 ms of the server's time, made
# on each new connection at the first statement that uses them. The send's write (`send_tx`)
# passes and returns both, and runs while the send holds its place in the message stream, so
# on a fresh connection that query held back every process's deliveries. Asked here instead,
# as each connection is made, before any send has it.
_LEARN_ARRAYS = "SELECT CAST($1 AS integer[]), CAST($2 AS bigint[])"


def learn_array_types(engine: AsyncEngine) -> None:
    """Have each new PostgreSQL connection learn the array types the send path uses."""

    @event.listens_for(engine.sync_engine, "connect")
    def _learn(dbapi_conn: Any, _record: Any) -> None:
        # only a head start: a connection that cannot answer now says so at its first use
        with contextlib.suppress(Exception):
            dbapi_conn.run_async(lambda conn: conn.prepare(_LEARN_ARRAYS))


def keep_private(path: Path, *, create: bool = True) -> None:
    """Make a SQLite database and its companions readable and writable by this user only.

    The database is created empty with mode 0600 before SQLite first opens it (an empty file is
    an empty database); SQLite gives its -wal, -shm and -journal files the database's mode.
    Files from before are narrowed to 0600 here, at every start.
    """
    if create:
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        file = path.with_name(path.name + suffix)
        try:
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)
        except FileNotFoundError:
            continue
        except OSError:  # not ours to change: say so, and carry on
            log.warning("cannot make %s private (mode 0600)", file.name)


class Database:
    """One database: a writer and a reader session factory."""

    def __init__(
        self,
        url: str,
        *,
        name: str,
        pool_size: int = 5,
        max_overflow: int = 10,
        ping_after: float = PING_AFTER,
        outages: Outages | None = None,
    ) -> None:
        self.url = url
        self.name = name
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            path = parsed.database
            if path and path != ":memory:":
                # narrowed if it exists; created only by `create_file`, when a migration makes
                # its schema: opening a database must not bring one into being
                keep_private(Path(path), create=False)
            cached = {"cached_statements": SQLITE_STATEMENTS}
            self.write_engine = create_async_engine(
                url,
                pool_size=1,
                max_overflow=0,
                pool_timeout=60,
                hide_parameters=True,
                connect_args=cached,
            )
            self.read_engine = create_async_engine(
                url, pool_size=8, max_overflow=8, hide_parameters=True, connect_args=cached
            )
            sqlite_pragmas(self.write_engine, immediate=True)
            sqlite_pragmas(self.read_engine, immediate=False)
            # small indexed lookups on hot paths read synchronously: in WAL mode a reader never
            # waits for a writer, and a lookup costs less than a hop to a driver thread
            self.sync_reader: Engine | None = create_engine(
                parsed.set(drivername="sqlite"),
                pool_size=4,
                max_overflow=4,
                connect_args={"check_same_thread": False, **cached},
                hide_parameters=True,
            )
            sqlite_pragmas(self.sync_reader, immediate=None)
        else:
            # each process holds up to pool_size + max_overflow connections to each database:
            # processes x 2 x that must stay under the server's max_connections (see
            # docs/operating.md), or a busy moment fails with "too many clients"
            self.write_engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                hide_parameters=True,
            )
            check_before_use(self.write_engine, ping_after, outages or Outages())
            learn_array_types(self.write_engine)
            self.read_engine = self.write_engine
            self.sync_reader = None
        # `run_read`'s statements each run as their own consistent read, as SQLite's in-place
        # reader runs them: no BEGIN and ROLLBACK around a lookup (two round trips on PostgreSQL)
        self._lookups = self.read_engine.execution_options(isolation_level="AUTOCOMMIT")
        self.path = parsed.database if self.is_sqlite else None
        self._writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._reader = async_sessionmaker(self.read_engine, expire_on_commit=False)

    def create_file(self) -> None:
        """Make a SQLite database's file (private from its first moment), and its folder."""
        if self.is_sqlite and self.path and self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            keep_private(Path(self.path))

    def file_missing(self) -> bool:
        """A SQLite database whose file is not there yet (never so for PostgreSQL)."""
        return bool(self.is_sqlite and self.path and not Path(self.path).exists())

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    def writer(self) -> AsyncSession:
        """A session for the unit of work; it begins a transaction at its first statement."""
        return self._writer()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction of its own, for the CLI and background jobs: commits on success."""
        async with self._writer() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reader() as session:
            yield session

    async def run_read(self, fn: Callable[[Connection], T]) -> T:
        """Run `fn(connection)`: in place on SQLite, through the async driver elsewhere; each of
        its statements is a consistent read of its own (no transaction around them)."""
        if self.sync_reader is not None:
            with self.sync_reader.connect() as conn:
                return fn(conn)
        async with self._lookups.connect() as conn:
            return await conn.run_sync(fn)

    def autocommit(self) -> AsyncConnection:
        """A connection (`async with`) whose statements each commit on their own: no BEGIN,
        no COMMIT, so no round trip for either (PostgreSQL's send at once, `send_tx`)."""
        return self._lookups.connect()

    async def dispose(self) -> None:
        if self.sync_reader is not None:
            self.sync_reader.dispose()
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


class Databases:
    """The primary database and the messaging database; never joined."""

    def __init__(
        self, app_url: str, messaging_url: str, *, pool_size: int = 5, max_overflow: int = 10
    ) -> None:
        pools = {"pool_size": pool_size, "max_overflow": max_overflow}
        # both are usually on one server: a connection found lost to either has the other's
        # pooled connections checked too
        outages = Outages()
        self.app = Database(app_url, name="app", outages=outages, **pools)
        self.messaging = Database(messaging_url, name="messaging", outages=outages, **pools)

    async def dispose(self) -> None:
        await self.app.dispose()
        await self.messaging.dispose()


def record_type(keys: tuple[str, ...]) -> type[tuple[Any, ...]]:
    """A tuple type whose columns also read as attributes, like SQLAlchemy's `Row`."""
    fields = {key: property(itemgetter(i)) for i, key in enumerate(keys)}
    return type("Record", (tuple,), {"__slots__": (), **fields})


class Prepared:
    """A Core statement compiled once for one dialect and run straight on a DBAPI cursor.

    The SQL, the parameter order and every bind and result conversion are SQLAlchemy's own,
    worked out once; what is skipped is the per-execution machinery (cache lookup, execution
    context, result object), which costs several times the statement itself on SQLite. For the
    few statements of the hottest path only; everything else goes through a Connection.
    """

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql: str = compiled.string
        given = dict(compiled.construct_params(_check=False))  # literals compiled in the SQL
        binds = compiled._bind_processors
        # per placeholder: (parameter name or None for a constant, constant, bind conversion)
        self.args = [
            (name if given.get(name) is None else None, given.get(name), binds.get(name))
            for name in compiled.positiontup or ()
        ]
        columns = compiled._result_columns or []
        self.procs = [c.type._cached_result_processor(dialect, None) for c in columns]
        self.convert = any(p is not None for p in self.procs)
        self.record = record_type(tuple(c.keyname for c in columns))

    def rows(self, cursor: Any, params: dict[str, Any]) -> list[Any]:
        args = []
        for name, constant, bind in self.args:
            value = params[name] if name is not None else constant
            args.append(bind(value) if bind is not None else value)
        cursor.execute(self.sql, args)
        if not self.procs:
            return []
        record, procs = self.record, self.procs
        if not self.convert:
            return [record(row) for row in cursor.fetchall()]
        return [
            record([v if p is None else p(v) for p, v in zip(procs, row, strict=True)])
            for row in cursor.fetchall()
        ]
