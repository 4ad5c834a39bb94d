"""Notifications on one's devices, from the profile: the push switch, the devices that get
pushes (each removable with a plain form), and, with script, turning them on for this browser.
The same services as `/api/v1/push`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse
from starlette.responses import Response

from pigeon.accounts import service as accounts
from pigeon.core.errors import NotFound
from pigeon.core.types import INT32_MAX
from pigeon.messaging.context import Ctx
from pigeon.push import keys
from pigeon.push import service as push
from pigeon.web.deps import Form, PageCtx, field, nav
from pigeon.web.render import render

router = APIRouter()
Username = Annotated[str, Path(min_length=1, max_length=32)]
DeviceId = Annotated[int, Path(ge=1, le=INT32_MAX)]
NOTICES = {
    "on": "Notifications are on for your devices.",
    "off": "Notifications are off: none of your devices will be told of new messages.",
    "removed": "Removed. That device gets no more notifications.",
}


def _mine(ctx: Ctx, username: str) -> None:
    """Only one's own devices: anyone else's page is not found."""
    if accounts.normalize_username(username) != ctx.viewer.username:
        raise NotFound("No such page.", code="not_found")


async def devices_context(ctx: Ctx) -> dict[str, Any]:
    """What the devices partial needs (`push_devices.html`), for this page and the settings
    page that will hold it."""
    async with ctx.uow.read(ctx.dbs.app) as session:
        found = await push.devices(session, ctx.viewer.id)
        enabled = await push.push_enabled(session, ctx.viewer.id)
    return {
        "devices": found,
        "push_on": enabled,
        "push_key": keys.public_key(ctx.settings),
        "devices_base": f"/u/{ctx.viewer.username}/devices",
    }


@router.get("/u/{username}/devices")
async def devices_page(
    request: Request, username: Username, ctx: PageCtx, notice: str | None = None
) -> Response:
    _mine(ctx, username)
    context = {
        **await nav(request, ctx.viewer, ctx.uow),
        **await devices_context(ctx),
        "title": "Notifications on your devices",
        "section": "profile",
        "notice": NOTICES.get(notice or ""),
    }
    return render(request, "devices.html", context)


@router.post("/u/{username}/devices/setting")
async def set_push(username: Username, ctx: PageCtx, form: Form) -> Response:
    _mine(ctx, username)
    on = await push.set_push_enabled(
        ctx.uow, ctx.rt.limiter, ctx.viewer.id, field(form, "push") == "1"
    )
    return RedirectResponse(
        f"/u/{ctx.viewer.username}/devices?notice={'on' if on else 'off'}", status_code=303
    )


@router.post("/u/{username}/devices/{device_id}/remove")
async def remove(username: Username, device_id: DeviceId, ctx: PageCtx, form: Form) -> Response:
    _mine(ctx, username)
    await push.remove_device(ctx.uow, ctx.rt.limiter, ctx.viewer.id, device_id)
    return RedirectResponse(f"/u/{ctx.viewer.username}/devices?notice=removed", status_code=303)
