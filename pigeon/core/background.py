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
        """Cancel the loop and wait for it; cancel again if a cancel was swallowed (a loop
        caught between two awaits), so that stopping never hangs."""
        task, self._task = self._task, None
        while task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait({task}, timeout=2.0)
        if task is not None and not task.cancelled():
            task.exception()  # retrieved: a loop that died was logged where it died

    async def _loop(self) -> None:
        raise NotImplementedError
