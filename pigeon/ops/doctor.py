"""`pigeon doctor`: look over an install's settings and surroundings and say what to fix.

Each check reads, never writes (the media store's check writes and removes one probe file), and
never creates a database: a missing SQLite file is reported, not made. A check ends in one of
three states: ok, warn (works, but should be changed before real use), fail (will not work).
"""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import shutil
import stat
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from pigeon.core import migrate
from pigeon.core.db import Database, DatabaseUnavailable
from pigeon.email import sender
from pigeon.media.storage import open_store
from pigeon.settings import Settings

State = Literal["ok", "warn", "fail"]
WEAK_SECRETS = {"", "secret", "changeme", "change-me", "pigeon", "password", "test", "dev"}
MIN_SECRET_CHARS = 32
MIN_FREE_BYTES = 1 << 30  # 1 GiB
MAX_SKEW_SECONDS = 1.0
FD_HEADROOM = 256  # databases, files being served, the listening socket


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    state: State
    detail: str
    fix: str = ""


Check = Callable[[Settings], Awaitable[list[Finding]]]


async def examine(settings: Settings, *, expected_sockets: int = 1000) -> list[Finding]:
    """Every check, in order; a check that breaks is itself a failure, not a crash."""
    checks: list[tuple[str, Check]] = [
        ("secret key", _secret),
        ("files", _files),
        ("app database", lambda s: _database(s, "app")),
        ("messaging database", lambda s: _database(s, "messaging")),
        ("redis", _redis),
        ("smtp", _smtp),
        ("media store", _media),
        ("public address", _public_url),
        ("password hashing", _hashing),
        ("open files", lambda s: _fds(s, expected_sockets)),
        ("disk", _disk),
    ]
    found: list[Finding] = []
    for name, check in checks:
        try:
            found += await check(settings)
        except Exception as exc:  # the doctor reports; it does not fall over
            found.append(Finding(name, "fail", f"could not check: {exc}"))
    return found


async def _secret(settings: Settings) -> list[Finding]:
    if settings.secret_key is None:
        path = settings.data_dir / "secret.key"
        if not path.exists():
            return [Finding("secret key", "ok", "generated into the data folder at first start")]
        key, where = path.read_text().strip(), str(path)
    else:
        key, where = settings.secret_key, "PIGEON_SECRET_KEY"
    if key.lower() in WEAK_SECRETS or len(key) < MIN_SECRET_CHARS:
        return [
            Finding(
                "secret key",
                "fail",
                f"{where} is short or a well-known value ({len(key)} characters)",
                "set PIGEON_SECRET_KEY to a random value of at least 32 characters, e.g. "
                "`python3 -c 'import secrets; print(secrets.token_urlsafe(48))'`",
            )
        ]
    return [Finding("secret key", "ok", f"{where}: {len(key)} characters")]


async def _files(settings: Settings) -> list[Finding]:
    """Only this account may read what holds the key, the sessions and the messages."""
    found = []
    candidates = [settings.data_dir / "secret.key"]
    for url in (settings.app_db_url, settings.messaging_db_url):
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database:
            candidates.append(Path(parsed.database))
    for path in candidates:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            found.append(
                Finding(
                    "files",
                    "fail",
                    f"{path} can be read by others (mode {mode:o})",
                    f"chmod 600 {path}",
                )
            )
    if not found:
        found.append(Finding("files", "ok", "the key and the databases are private (0600)"))
    return found


async def _database(settings: Settings, name: str) -> list[Finding]:
    url = settings.app_db_url if name == "app" else settings.messaging_db_url
    parsed = make_url(url)
    check = f"{name} database"
    if parsed.drivername.startswith("sqlite") and not Path(parsed.database or "").exists():
        if name == "messaging":
            return [Finding(check, "ok", "not created yet (messaging never switched on)")]
        return [Finding(check, "fail", f"{parsed.database} does not exist", "pigeon db upgrade")]
    db = Database(url, name=name)
    try:
        current, head = await migrate.status(db)
    except (OSError, asyncpg.PostgresError, SQLAlchemyError, DatabaseUnavailable) as exc:
        return [Finding(check, "fail", f"cannot connect: {exc}", "check the database URL")]
    finally:
        await db.dispose()
    try:
        steps = migrate.pending(name, current)
    except migrate.SchemaTooNew as exc:
        return [Finding(check, "fail", str(exc), "run the newer release")]
    where = parsed.render_as_string(hide_password=True)
    if steps:
        return [
            Finding(
                check,
                "warn",
                f"{where}: at {current}, {len(steps)} migrations behind",
                "pigeon db upgrade (the server also upgrades when it starts)",
            )
        ]
    return [Finding(check, "ok", f"{where}: reachable, schema {head}")]


async def _redis(settings: Settings) -> list[Finding]:
    if not settings.redis_url:
        return [Finding("redis", "ok", "not used: one process, in-process broker")]
    import redis.asyncio as redis

    client = redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        before = time.time()
        seconds, micros = await client.time()
        after = time.time()
    except (redis.RedisError, OSError) as exc:
        return [Finding("redis", "fail", f"cannot reach {settings.redis_url}: {exc}", "")]
    finally:
        await client.aclose()
    skew = abs(seconds + micros / 1e6 - (before + after) / 2)
    found = [Finding("redis", "ok", "reachable")]
    if skew > MAX_SKEW_SECONDS:
        found.append(
            Finding(
                "clock",
                "warn",
                f"this machine's clock is {skew:.1f} s off Redis's: every process's clock "
                "must agree (tokens, typing, presence expire by it)",
                "run an NTP client (chrony, systemd-timesyncd) on every machine",
            )
        )
    else:
        found.append(Finding("clock", "ok", f"within {skew * 1000:.0f} ms of Redis's"))
    return found


async def _smtp(settings: Settings) -> list[Finding]:
    if not settings.smtp_host:
        return [
            Finding(
                "smtp",
                "warn",
                "no SMTP host: invitations, resets and digests wait in the outbox",
                "set PIGEON_SMTP_HOST (and _PORT, _USERNAME, _PASSWORD, _TLS, _FROM)",
            )
        ]
    try:
        await sender.check(settings)
    except sender.SendFailed as exc:
        return [Finding("smtp", "fail", str(exc), "check the PIGEON_SMTP_* settings")]
    return [Finding("smtp", "ok", f"{settings.smtp_host}:{settings.smtp_port} takes us")]


async def _media(settings: Settings) -> list[Finding]:
    store = open_store(settings)
    try:
        await store.check()
    except Exception as exc:
        return [Finding("media store", "fail", str(exc), "check the media folder or bucket")]
    finally:
        await store.close()
    return [Finding("media store", "ok", f"{store.name}: writable")]


async def _public_url(settings: Settings) -> list[Finding]:
    local = urlsplit(settings.public_url).hostname in ("127.0.0.1", "localhost", "::1")
    if settings.public_url.startswith("http://") and not local:
        return [
            Finding(
                "public address",
                "warn",
                f"{settings.public_url} is plain HTTP: sign-ins and messages cross the network "
                "unencrypted",
                "serve over TLS behind a reverse proxy and set PIGEON_PUBLIC_URL=https://…",
            )
        ]
    if local:
        return [
            Finding(
                "public address",
                "warn",
                f"{settings.public_url}: links in emails will not work for anyone else",
                "set PIGEON_PUBLIC_URL to the address members use",
            )
        ]
    return [Finding("public address", "ok", settings.public_url)]


async def _hashing(settings: Settings) -> list[Finding]:
    if settings.password_hash_memory_kib < 19 * 1024 or settings.password_hash_time_cost < 2:
        return [
            Finding(
                "password hashing",
                "warn",
                "argon2id is set below OWASP's minimum (19 MiB, time cost 2)",
                "unset PIGEON_PASSWORD_HASH_MEMORY_KIB and _TIME_COST",
            )
        ]
    return [Finding("password hashing", "ok", "argon2id at or above OWASP's minimum")]


async def _fds(settings: Settings, expected_sockets: int) -> list[Finding]:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = expected_sockets + FD_HEADROOM
    if soft != resource.RLIM_INFINITY and soft < needed:
        return [
            Finding(
                "open files",
                "fail",
                f"a process may open {soft} files; {expected_sockets} live connections need "
                f"about {needed}",
                f"raise the limit (systemd: LimitNOFILE={needed * 2}; shell: ulimit -n), or "
                "run more processes behind the proxy",
            )
        ]
    return [Finding("open files", "ok", f"{soft} allowed, {needed} needed")]


async def _disk(settings: Settings) -> list[Finding]:
    folder = settings.data_dir if settings.data_dir.exists() else Path(".")
    usage = await asyncio.to_thread(shutil.disk_usage, folder)
    free_gib = usage.free / (1 << 30)
    if usage.free < MIN_FREE_BYTES or usage.free < usage.total * 0.05:
        return [
            Finding(
                "disk",
                "fail",
                f"{free_gib:.1f} GiB free where {folder} lives",
                "free space, or move PIGEON_DATA_DIR: SQLite and uploads stop when it is full",
            )
        ]
    return [Finding("disk", "ok", f"{free_gib:.0f} GiB free")]


def summary(found: list[Finding]) -> dict[str, int]:
    counts = {"ok": 0, "warn": 0, "fail": 0}
    for finding in found:
        counts[finding.state] += 1
    return counts
