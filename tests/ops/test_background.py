"""The periodic background loop every job shares: it runs on time, skips a run another process
holds, keeps going after a failure, counts each outcome in /metrics, and stops when told."""

from __future__ import annotations

import asyncio

from pigeon.core import metrics
from pigeon.core.background import Periodic
from pigeon.core.errors import Conflict


def count(task: str, result: str) -> float:
    return metrics.job_runs.labels(task, result)._value.get()  # noqa: SLF001


class Scripted(Periodic):
    """Each run does what the script says next: "ok", "idle", "busy" or "fail"."""

    name = "scripted-test-job"

    def __init__(self, rt, script: list[str]) -> None:  # type: ignore[no-untyped-def]
        super().__init__(rt)
        self.script, self.holders = script, set()

    def interval(self) -> float:
        return 0.01

    async def run_once(self, holder: str) -> bool:
        self.holders.add(holder)
        step = self.script.pop(0) if self.script else "idle"
        if step == "busy":
            raise Conflict("elsewhere", code="busy")
        if step == "fail":
            raise RuntimeError("boom")
        return step == "ok"


async def test_a_periodic_job_survives_failures_and_counts_what_it_did(app) -> None:
    before = {r: count(Scripted.name, r) for r in ("ok", "failed")}
    job = Scripted(app.state.runtime, ["ok", "busy", "fail", "idle", "ok"])
    assert job.enabled()
    job.start()
    for _ in range(200):
        if not job.script:
            break
        await asyncio.sleep(0.01)
    await job.stop()
    assert job.script == []  # it kept going past the conflict and the failure
    assert count(Scripted.name, "ok") - before["ok"] == 2  # idle and busy runs are not counted
    assert count(Scripted.name, "failed") - before["failed"] == 1
    assert len(job.holders) == 1  # one holder for the life of the loop
    last = metrics.job_last_success.labels(Scripted.name)._value.get()  # noqa: SLF001
    assert last > 1.7e9
    await job.stop()  # stopping twice is harmless


async def test_a_zero_interval_turns_a_job_off(app) -> None:
    class Off(Scripted):
        def interval(self) -> float:
            return 0

    job = Off(app.state.runtime, ["ok"])
    assert not job.enabled()
    job.start()
    await job.stop()
    assert job.script == ["ok"]
