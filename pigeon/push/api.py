"""Web Push for API clients and the page's script: the server's key, one's devices, the
switch. Pushes carry no message content; a woken service worker asks the API what to show."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from pigeon.core.deps import CurrentUser, Rt, Uow
from pigeon.push import keys
from pigeon.push import service as push
from pigeon.push.schemas import (
    DeviceOut,
    EndpointIn,
    ErrorOut,
    KeyOut,
    PushSettingIn,
    PushSettingOut,
    SubscriptionIn,
)

router = APIRouter(prefix="/push", tags=["push"])

SIGNED_IN: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "not signed in"},
    403: {"model": ErrorOut, "description": "suspended, or a cookie request without CSRF"},
}
INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "`invalid_endpoint`, or a key of the wrong shape"}
}
UNKNOWN: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "`device_not_found`: not one of your devices"}
}


@router.get("/key", response_model=KeyOut, summary="The server's VAPID public key")
async def public_key(rt: Rt) -> dict[str, str]:
    """Give it to `pushManager.subscribe({applicationServerKey})`."""
    return {"public_key": keys.public_key(rt.settings)}


@router.get(
    "/subscriptions",
    response_model=list[DeviceOut],
    summary="Your devices that get pushes",
    responses=SIGNED_IN,
)
async def list_devices(user: CurrentUser, rt: Rt) -> list[Any]:
    async with rt.dbs.app.read() as session:
        return list(await push.devices(session, user.id))


@router.post(
    "/subscriptions",
    response_model=DeviceOut,
    status_code=201,
    summary="Subscribe this device",
    responses={
        200: {"model": DeviceOut, "description": "already subscribed: keys refreshed"},
        **SIGNED_IN,
        **INVALID,
    },
)
async def subscribe(
    body: SubscriptionIn,
    request: Request,
    response: Response,
    user: CurrentUser,
    rt: Rt,
    uow: Uow,
) -> Any:
    """The browser's `PushSubscription` as JSON. New messages are pushed to it while you have
    no page of Pigeon open (and push is on); the same endpoint again refreshes it."""
    row, created = await push.subscribe(
        uow,
        rt.settings,
        rt.limiter,
        user.id,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        label=body.label or push.device_label(request.headers.get("user-agent")),
    )
    response.status_code = 201 if created else 200
    return row


@router.delete(
    "/subscriptions",
    status_code=204,
    summary="Unsubscribe a device",
    responses={**SIGNED_IN, **UNKNOWN},
)
async def unsubscribe(body: EndpointIn, user: CurrentUser, rt: Rt, uow: Uow) -> Response:
    await push.unsubscribe(uow, rt.limiter, user.id, body.endpoint)
    return Response(status_code=204)


@router.get(
    "/settings", response_model=PushSettingOut, summary="Your push switch", responses=SIGNED_IN
)
async def get_setting(user: CurrentUser, rt: Rt) -> dict[str, bool]:
    async with rt.dbs.app.read() as session:
        return {"push": await push.push_enabled(session, user.id)}


@router.put(
    "/settings",
    response_model=PushSettingOut,
    summary="Turn pushes to all your devices on or off",
    responses=SIGNED_IN,
)
async def put_setting(body: PushSettingIn, user: CurrentUser, rt: Rt, uow: Uow) -> dict[str, bool]:
    return {"push": await push.set_push_enabled(uow, rt.limiter, user.id, body.push)}
