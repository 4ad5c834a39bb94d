"""Calls that arrive together, made as one (`Gathered`): the places of the message stream in
Redis (`core.stream`), and people read on a miss (`core.people`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Gathered(Generic[T, R]):
    """One call at a time: what is asked while one is out goes together in the next, so that
    requests arriving at once share a round trip and its cost. Nothing waits for a timer: with
    one request at a time, each goes at once. `run` answers the items in order.

    An item goes whether or not its caller still waits (a release must), unless `give_back`
    is given: then an item whose caller gave up (a cancelled request) before its call went is
    left out, and one whose caller gave up after it went is handed to `give_back` (a place
    reserved for nobody)."""

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R]]],
        give_back: Callable[[T, R], None] | None = None,
    ) -> None:
        self._run = run
        self._give_back = give_back
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Future[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = [
                    (item, f)
                    for item, f in self._waiting
                    if self._give_back is None or not f.done()
                ]
                self._waiting = []
                if not batch:
                    continue
                try:
                    answers = await self._run([item for item, _ in batch])
                except BaseException as exc:  # each caller sees the call's failure
                    for _, future in batch:
                        if future.done():
                            continue
                        if isinstance(exc, asyncio.CancelledError):
                            future.cancel()
                        else:
                            future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (item, future), answer in zip(batch, answers, strict=True):
                    if not future.done():
                        future.set_result(answer)
                    elif self._give_back is not None:
                        self._give_back(item, answer)
        finally:
            self._task = None
