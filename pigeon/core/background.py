"""A job the server runs in the background of its process: started with the app, cancelled
when it stops. Subclasses say whether it runs (`enabled`) and what it does (`_loop`)."""

from __future__ import annotations

import asyncio
import contextlib

from pigeon.core.runtime import Runtime


class Background:
    name = "background"

    def __init__(self, rt: Runtime) -> None:
        self.rt, self.settings = rt, rt.settings
        self._task: asyncio.Task[None] | None = None

    def enabled(self) -> bool:
        return True

    def start(self) -> None:
        if self.enabled():
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        raise NotImplementedError
