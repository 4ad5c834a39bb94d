"""The messaging context a route declares: who asks, in which unit of work, on which runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from pigeon.core.deps import Bearer, current_principal
from pigeon.core.runtime import Runtime
from pigeon.messaging.context import Ctx


async def messaging_ctx(request: Request, creds: Bearer) -> AsyncIterator[Ctx]:
    """Who asks and the request's unit of work (committed when the route returns, before the
    response is sent), in one dependency: the send path is the hottest route there is."""
    rt: Runtime = request.app.state.runtime
    user = await current_principal(request, rt, creds)
    async with rt.uow_scope() as uow:
        yield Ctx(rt=rt, sends=request.app.state.sends, viewer=user, uow=uow)


MessagingCtx = Annotated[Ctx, Depends(messaging_ctx, scope="function")]


async def send_ctx(request: Request, creds: Bearer) -> Ctx:
    """The same context for the send route, with a unit of work the route owns itself
    (`async with owning(ctx.uow)`): a generator dependency costs FastAPI an exit stack, a
    cancel scope and a checkpoint on every request, about 50 µs, and this route runs more than
    any other. The commit still comes before the response."""
    rt: Runtime = request.app.state.runtime
    user = await current_principal(request, rt, creds)
    return Ctx(rt=rt, sends=request.app.state.sends, viewer=user, uow=rt.uow())


SendCtx = Annotated[Ctx, Depends(send_ctx)]
