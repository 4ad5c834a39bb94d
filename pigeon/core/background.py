"""A job the server runs in the background of its process: started with the app, cancelled
when it stops. Subclasses say whether it runs (`enabled`) and what it does (`_loop`), or, for
a job that runs every so often, how often and what one run does (`Periodic`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pigeon.core import metrics
from pigeon.core.errors import Conflict, log_failure
from pigeon.core.leases import holder_id
from pigeon.core.runtime import Runtime

log = logging.getLogger("pigeon.background")


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


class Periodic(Background):
    """Runs `run_once` every `interval()` seconds (0: never), the first time after
    `first_delay()`. A run that another process holds the lease for (Conflict) is skipped; a
    run that fails is logged, and the next one comes on time; each run that did something is
    counted in /metrics under the job's name."""

    def interval(self) -> float:
        raise NotImplementedError

    def first_delay(self) -> float:
        return self.interval()

    def enabled(self) -> bool:
        return self.interval() > 0

    async def run_once(self, holder: str) -> bool:
        """One run; False when it did nothing (the lease's spacing said not yet)."""
        raise NotImplementedError

    async def _loop(self) -> None:
        holder = holder_id()
        delay = self.first_delay()
        while True:
            await asyncio.sleep(delay)
            delay = self.interval()
            try:
                ran = await self.run_once(holder)
            except Conflict:
                log.debug("%s is running in another process", self.name)
                continue
            except Exception:
                metrics.job_done(self.name, False, 0)
                log_failure(log, "%s run failed", self.name)
                continue
            if ran:
                metrics.job_done(self.name, True, self.rt.clock.now().timestamp())
