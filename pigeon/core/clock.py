"""The clock an app reads, so tests can move time instead of sleeping.

Each `Runtime` owns one; services reach it through what they are given (`uow.clock`,
`rt.clock`), and functions that only need the time take `now`.
"""

from __future__ import annotations

import datetime as dt
import time


class Clock:
    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._frozen: dt.datetime | None = None

    def now(self) -> dt.datetime:
        if self._frozen is not None:
            return self._frozen
        return dt.datetime.now(dt.UTC) + self._offset

    def monotonic(self) -> float:
        return time.monotonic() + self._offset.total_seconds()

    def advance(self, delta: dt.timedelta) -> None:
        if self._frozen is not None:
            self._frozen += delta
        self._offset += delta

    def freeze(self, at: dt.datetime | None = None) -> None:
        self._frozen = at or self.now()

    def reset(self) -> None:
        self._offset = dt.timedelta(0)
        self._frozen = None
