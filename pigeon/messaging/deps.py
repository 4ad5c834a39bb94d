"""The messaging context a route declares: who asks, in which unit of work, on which runtime."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pigeon.core.deps import CurrentUser, Rt, Uow
from pigeon.messaging.context import Ctx


async def messaging_ctx(request: Request, rt: Rt, user: CurrentUser, uow: Uow) -> Ctx:
    return Ctx(rt=rt, sends=request.app.state.sends, viewer=user, uow=uow)


MessagingCtx = Annotated[Ctx, Depends(messaging_ctx, scope="function")]
