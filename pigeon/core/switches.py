"""Run-time settings (primary database), the messaging switch first among them.

The switch is read on every messaging request, so each process caches a setting for at most
`settings_cache_seconds` (1 s) and forgets it at once when a `settings.changed` control message
arrives from any process; the expiry only backstops a message that never came.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from pigeon.core.clock import Clock
from pigeon.core.db import AppBase, Database, UTCDateTime
from pigeon.core.events import SettingChanged
from pigeon.core.uow import UnitOfWork

MESSAGING_ENABLED = "messaging_enabled"
# when `pigeon backup` last finished: {"at": ISO time, "folder": where}
LAST_BACKUP = "last_backup"
# the switch's three states; stored as true, false or "read_only" under MESSAGING_ENABLED
MODES = ("on", "read_only", "off")


def mode_of(value: Any) -> str:
    """on, off, or read_only (members read, search and export; nothing new is written)."""
    if value == "read_only":
        return "read_only"
    return "on" if value is True else "off"


def stored(mode: str) -> Any:
    return {"on": True, "off": False, "read_only": "read_only"}[mode]


class Setting(AppBase):
    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Switches:
    """One process's cache of run-time settings."""

    def __init__(self, db: Database, cache_seconds: float, clock: Clock) -> None:
        self.db = db
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Any]] = {}

    def forget(self, key: str | None = None) -> None:
        if key is None:
            self._cache.clear()
        else:
            self._cache.pop(key, None)

    async def get(self, key: str, default: Any = None) -> Any:
        hit = self._cache.get(key)
        if hit and hit[0] > self.clock.monotonic():
            return hit[1]
        row = await self.db.run_read(
            lambda conn: conn.execute(select(Setting.value).where(Setting.key == key)).first()
        )
        value = default if row is None else row.value
        self._cache[key] = (self.clock.monotonic() + self.cache_seconds, value)
        return value

    async def messaging_enabled(self) -> bool:
        """On or read-only: members may at least read."""
        return await self.messaging_mode() != "off"

    async def messaging_mode(self) -> str:
        return mode_of(await self.get(MESSAGING_ENABLED, False))

    async def row(self, key: str, uow: UnitOfWork | None = None) -> Setting | None:
        """The stored row; through `uow`, as that unit of work left it."""
        if uow is not None:
            async with uow.read(self.db) as session:
                return await session.get(Setting, key)
        async with self.db.read() as session:
            return await session.get(Setting, key)

    async def set(self, uow: UnitOfWork, key: str, value: Any, *, actor_id: int | None) -> Any:
        """Store a setting in the unit of work; returns the previous value. Every process
        (this one too) forgets its cached value once the change commits."""
        session = uow.app
        row = await session.get(Setting, key)
        before = None if row is None else row.value
        if row is None:
            session.add(
                Setting(key=key, value=value, updated_at=self.clock.now(), updated_by=actor_id)
            )
        else:
            row.value, row.updated_at, row.updated_by = value, self.clock.now(), actor_id
        await session.flush()
        uow.control(SettingChanged(key=key, value=value))

        async def forget_here() -> None:  # at once, not when the broker brings it back
            self.forget(key)

        uow.after_commit(forget_here)
        return before


async def record_backup(db: Database, value: dict[str, Any], now: dt.datetime) -> None:
    """Note a finished backup (`LAST_BACKUP`) from a process that holds no Switches."""
    async with db.write() as session:
        row = await session.get(Setting, LAST_BACKUP)
        if row is None:
            session.add(Setting(key=LAST_BACKUP, value=value, updated_at=now))
        else:
            row.value, row.updated_at = value, now
