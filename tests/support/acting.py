"""Calling services directly, as a person, in a unit of work that commits on leaving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pigeon.accounts import directory
from pigeon.core.runtime import Runtime
from pigeon.messaging.context import Ctx
from pigeon.messaging.send_tx import SendPath


@asynccontextmanager
async def acting_as(rt: Runtime, sends: SendPath, user_id: int) -> AsyncIterator[Ctx]:
    viewer = await directory.get_principal(rt, user_id)
    assert viewer is not None
    async with rt.uow_scope() as uow:
        yield Ctx(rt=rt, sends=sends, viewer=viewer, uow=uow)
