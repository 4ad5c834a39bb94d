"""`/api/v1/ws`: the live connection, and the hooks that start and stop this process's hub.

Frames from the server are JSON `{type, data, id?}`; from the client `resume`, `typing`, `read`
and `ping`. Refusals happen after the handshake, as a close code and a reason a client can
act on: 4401 (sign in again), 4403 (suspended, or messaging off), 4008 (slow consumer:
reconnect and resume), 1001 (server going away: reconnect), 1012 (reconnect and resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.websockets import WebSocket, WebSocketState

from pigeon.accounts import directory
from pigeon.core.deps import SESSION_COOKIE
from pigeon.core.errors import AppError, NotAllowed, Unauthorized
from pigeon.core.runtime import Runtime
from pigeon.messaging import catchup, changes
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.messaging.events import MessageNew
from pigeon.realtime.connection import Close, Connection, Frame
from pigeon.realtime.frames import Error, ErrorData, Hello, HelloData, Pong
from pigeon.realtime.hub import Hub
from pigeon.realtime.typing import typing

log = logging.getLogger("pigeon.realtime")


def install(app: FastAPI) -> None:
    app.add_api_websocket_route("/api/v1/ws", websocket_endpoint, name="ws")


def close_before_server_stops(hub: Hub) -> None:
    """On SIGTERM/SIGINT, send "going away" before the server drops its sockets on its own."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous = signal.getsignal(sig)
        except ValueError:  # not the main thread
            return
        owner = getattr(previous, "__self__", None)
        if not type(owner).__module__.startswith("uvicorn"):
            continue  # only wrap a running server's own handler

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            loop.call_soon_threadsafe(hub.going_away)
            previous(signum, frame)

        signal.signal(sig, handler)


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.close(code=code, reason=reason)


async def websocket_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    async with ws.app.state.hub.admission:
        conn = await _admit(ws, ws.app)
    if conn is None:
        return
    try:
        conn.start()
        if conn.pending is not None:  # ?last_message_id=: the catch-up starts before anything
            ctx = await _ctx(conn, ws.app, ws.app.state.runtime.uow())
            conn.resumer = asyncio.ensure_future(
                _resume(ctx, conn, _query_int(ws, "last_message_id") or 0, parked=True)
            )
        await _receive_loop(ws, conn, ws.app)
    except Exception:
        if not conn.closed:
            log.exception("live connection failed")
    finally:
        await conn.finish()
        if not conn.closed and ws.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(Exception):
                await ws.close(1000)


async def _admit(ws: WebSocket, app: Any) -> Connection | None:
    """Authenticate, register for live events, say hello; None (and closed) when refused."""
    rt: Runtime = app.state.runtime
    hub: Hub = app.state.hub
    token = ws.query_params.get("token")
    if not token:
        auth = ws.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else None
    cookie = None if token else ws.cookies.get(SESSION_COOKIE)
    try:
        viewer = await rt.authenticate(token, cookie)
    except Unauthorized as exc:
        await _refuse(ws, Close.UNAUTHORIZED, exc.code)
        return None
    except NotAllowed as exc:
        await _refuse(ws, Close.FORBIDDEN, exc.code)
        return None
    if hub.stopping:
        await _refuse(ws, *Close.GOING_AWAY)
        return None
    if not await rt.switches.messaging_enabled():
        await _refuse(ws, Close.FORBIDDEN, "messaging_disabled")
        return None

    conn = Connection(ws, viewer.id, rt.settings.ws_queue_size)
    hub.register(conn)  # live events queue up from here on: nothing falls in a gap
    try:
        await conn.send_now(await _hello(rt, viewer.id, hub))
        if _query_int(ws, "last_message_id") is not None:
            conn.begin_replay()  # nothing live goes out before the replayed messages
    except BaseException:
        await conn.finish()
        raise
    return conn


async def _hello(rt: Runtime, user_id: int, hub: Hub) -> str:
    async with rt.dbs.messaging.read() as session:
        unread = await messaging.unread_for(session, user_id)
    data = HelloData(
        user_id=user_id,
        unread_total=unread.total,
        unread=unread.conversations,
        latest_message_id=await hub.latest_message_id(rt.dbs.messaging),
        heartbeat_seconds=rt.settings.ws_heartbeat_seconds,
        typing_seconds=rt.settings.typing_seconds,
    )
    return Hello(data=data).encode().decode()


async def _receive_loop(ws: WebSocket, conn: Connection, app: Any) -> None:
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        try:
            frame = orjson.loads(raw)
            kind = frame["type"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            conn.offer(_error("bad_frame", "Frames are JSON objects with a type."))
            continue
        if conn.closed:
            return
        await _handle(kind, frame, conn, app)


async def _handle(kind: str, frame: dict[str, Any], conn: Connection, app: Any) -> None:
    if kind == "ping":
        conn.offer(Frame("pong", Pong().encode().decode()))
        return
    if kind not in ("resume", "typing", "read"):
        conn.offer(_error("unknown_frame", f"Unknown frame type: {str(kind)[:40]}."))
        return
    uow = app.state.runtime.uow()
    try:
        ctx = await _ctx(conn, app, uow)
        if kind == "resume":
            after = _int(frame, "last_message_id", minimum=0)
            if conn.resumer is not None and not conn.resumer.done():
                await asyncio.wait([conn.resumer])  # one catch-up at a time, in order
            conn.resumer = asyncio.ensure_future(_resume(ctx, conn, after))
        elif kind == "typing":
            await typing(ctx, app.state.hub.typing, _int(frame, "conversation_id"))
        else:
            await changes.mark_read(ctx, _int(frame, "conversation_id"), _int(frame, "message_id"))
        await uow.commit()
    except AppError as exc:
        await uow.rollback()
        conn.offer(_error(exc.code, exc.message, ref=frame.get("ref")))
    finally:
        await uow.close()


async def _ctx(conn: Connection, app: Any, uow: Any) -> Ctx:
    rt: Runtime = app.state.runtime
    viewer = await directory.get_principal(rt, conn.user_id)
    if viewer is None or viewer.is_suspended():
        app.state.hub.close_user(conn.user_id, Close.FORBIDDEN, "account_suspended")
        raise NotAllowed("Your account is suspended.", code="account_suspended")
    return Ctx(rt=rt, sends=app.state.sends, viewer=viewer, uow=uow)


async def _resume(ctx: Ctx, conn: Connection, after: int, *, parked: bool = False) -> None:
    """Replay what the client missed, then release the live events that arrived meanwhile."""
    if not parked:
        conn.begin_replay()
    try:
        async for message in catchup.replay(ctx, after):
            text = MessageNew(data=message, id=message.id).encode().decode()
            frame = Frame("message.new", text, message.id)
            if not await conn.put(frame):
                return
        await conn.end_replay()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("catch-up failed")
        conn.close(*Close.RESUME)


def _query_int(ws: WebSocket, name: str) -> int | None:
    value = ws.query_params.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


def _int(frame: dict[str, Any], name: str, *, minimum: int = 1) -> int:
    value = frame.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value < 2**63:
        raise AppError(f"{name} must be a positive integer.", code="validation_error", status=422)
    return value


def _error(code: str, message: str, ref: Any = None) -> Frame:
    if not isinstance(ref, str | int) or isinstance(ref, bool):
        ref = None
    data = ErrorData(code=code, message=message, ref=ref)
    return Frame("error", Error(data=data).encode().decode())
