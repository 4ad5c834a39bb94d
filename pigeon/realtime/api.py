"""`/api/v1/ws`: the live connection, its ticket, and the hooks that start and stop the hub.

Frames from the server are JSON `{type, data, id?}`; from the client `resume`, `typing`, `read`
and `ping`, each at most `ws_max_frame_bytes` and within the connection's frame budget
(`budget.py`). Read marks are coalesced (`reads.py`). One resume runs at a time: another sent
while it runs is refused (`resume_in_progress`; send it again once the first is done); a resume
replays at most `ws_resume_max_messages` and, when more are missing, ends with
`resume.truncated` so the client pages the rest over HTTP.

Refusals happen after the handshake, as a close code and a reason a client can act on: 4401
(sign in again, or get a new ticket), 4403 (suspended, messaging off, or a cookie from a page
of another origin), 4008 (slow consumer: reconnect and resume; too many frames: slow down),
1001 (server going away: reconnect), 1012 (reconnect and resume).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from fastapi import APIRouter, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketState

from pigeon.accounts import directory
from pigeon.auth.principals import signin_of
from pigeon.core.db import DatabaseUnavailable
from pigeon.core.deps import SESSION_COOKIE, Bearer, CurrentUser
from pigeon.core.errors import AppError, NotAllowed, Unauthorized, log_failure
from pigeon.core.logs import AnsweredRoute
from pigeon.core.runtime import Runtime
from pigeon.messaging import changes
from pigeon.messaging import service as messaging
from pigeon.messaging.context import Ctx
from pigeon.realtime import admission, resume
from pigeon.realtime.budget import RESUME_COST, FrameBudget, Verdict
from pigeon.realtime.connection import Close, Connection, Frame
from pigeon.realtime.frames import (
    Error,
    ErrorData,
    Hello,
    HelloData,
    Pong,
)
from pigeon.realtime.hub import Hub
from pigeon.realtime.reads import ReadMarks
from pigeon.realtime.tickets import TicketOut
from pigeon.realtime.typing import typing

log = logging.getLogger("pigeon.realtime")
T = TypeVar("T")

router = APIRouter(prefix="/api/v1", tags=["realtime"])


WS_PATH = "/api/v1/ws"
LIVE_ROUTE = AnsweredRoute(WS_PATH)


def install(app: FastAPI) -> None:
    """The live socket's route (its ticket route is among `app.shared_routes`)."""
    app.add_api_websocket_route(WS_PATH, websocket_endpoint, name="ws")


class LiveRoute:
    """The live socket, taken in front of the inner middleware and the router, which pass a
    WebSocket through untouched: a connection's coroutine lives as long as the connection, and
    each of their frames would stay on its stack all that time (tens of thousands of idle
    sockets a process)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            scope["route"] = LIVE_ROUTE  # what the request log and the metrics read
            return await websocket_endpoint(WebSocket(scope, receive, send))
        return await self.app(scope, receive, send)


@router.post(
    "/ws/ticket",
    response_model=TicketOut,
    summary="A single-use ticket to open the WebSocket",
    description=(
        "Connect to `/api/v1/ws?ticket=<ticket>` within `expires_in` seconds, once: a ticket "
        "keeps the access token out of URLs (and so out of logs). A spent or expired ticket "
        "is refused with close code 4401 and reason `invalid_ticket`; ask for a new one."
    ),
)
async def ws_ticket(request: Request, user: CurrentUser, creds: Bearer) -> TicketOut:
    hub: Hub = request.app.state.hub
    token = creds.credentials if creds else None
    cookie = None if token else request.cookies.get(SESSION_COOKIE)
    signin = signin_of(request.app.state.runtime, token, cookie)
    if signin is None:  # authenticated just now, so this does not happen; never a 500
        raise Unauthorized("Sign in to continue.", code="not_authenticated")
    await request.app.state.runtime.limiter.hit("ticket", user.id)
    return hub.tickets.issue(user.id, signin)


def close_before_server_stops(hub: Hub) -> None:
    """On SIGTERM/SIGINT, send "going away" (1001) before the server drops its sockets on its
    own: the server is told to stop once every close frame is out (or after `CLOSE_FIRST`
    seconds), or its own shutdown, on its next tick, would close them first with 1012. A
    second signal goes straight to the server (a forced exit on a second Ctrl-C)."""
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
            if hub.stopping:
                previous(signum, frame)
                return
            hub.stopping = True
            then = functools.partial(previous, signum, frame)
            loop.call_soon_threadsafe(lambda: hub.spawn(_going_away_then(hub, then)))

        signal.signal(sig, handler)


CLOSE_FIRST = 2.0  # seconds the close frames have before the server stops regardless


async def _going_away_then(hub: Hub, stop: Callable[[], None]) -> None:
    try:
        await hub.gone_away(CLOSE_FIRST)
    finally:
        stop()


async def _refuse(ws: WebSocket, code: int, reason: str) -> None:
    await ws.close(code=code, reason=reason)


async def websocket_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    async with ws.app.state.hub.admission:
        try:
            conn = await _admit(ws, ws.app)
        except DatabaseUnavailable as exc:  # the client reconnects after a moment
            log.warning("live connection turned away: %s", exc)
            await _refuse(ws, *Close.TRY_AGAIN)
            return
    if conn is None:
        return
    try:
        conn.start()
        if conn.pending is not None:  # ?last_message_id=: the catch-up starts before anything
            ctx = await _ctx(conn, ws.app, ws.app.state.runtime.uow())
            after = _query_int(ws, "last_message_id") or 0
            conn.resumer = asyncio.ensure_future(resume.replay(ctx, conn, after, parked=True))
        await _receive_loop(ws, conn, ws.app)
    except Exception:
        if not conn.closed:
            log_failure(log, "live connection failed")
    finally:
        try:
            if conn.reads is not None:
                await conn.reads.close()  # the last read mark is written, whatever happened
        finally:
            await conn.finish()
            if conn.closer is not None:
                with contextlib.suppress(Exception):
                    await conn.closer  # the close code and reason reach the client first
            if not conn.closed and ws.application_state != WebSocketState.DISCONNECTED:
                with contextlib.suppress(Exception):
                    await ws.close(1000)


async def _admit(ws: WebSocket, app: Any) -> Connection | None:
    """Authenticate, register for live events, say hello; None (and closed) when refused."""
    rt: Runtime = app.state.runtime
    hub: Hub = app.state.hub
    try:
        viewer, signin = await admission.authenticate(ws, rt, hub.tickets)
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

    conn = Connection(ws, viewer.id, rt.settings.ws_queue_size, clock=rt.clock, signin=signin)
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
        requests=unread.requests,
    )
    return Hello(data=data).encode().decode()


async def _receive_loop(ws: WebSocket, conn: Connection, app: Any) -> None:
    settings, clock = app.state.runtime.settings, app.state.runtime.clock
    budget = FrameBudget(settings.ws_frame_burst, settings.ws_frames_per_second, clock.monotonic())
    max_bytes = settings.ws_max_frame_bytes
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        raw = message.get("text")
        if raw is None:
            raw = message.get("bytes") or b""
        if conn.closed:
            return
        frame, kind, problem = _parse(raw, max_bytes)
        verdict = budget.take(clock.monotonic(), RESUME_COST if kind == "resume" else 1.0)
        if conn.closing:
            continue  # on its way out: what is queued goes first, then the close
        if verdict is Verdict.CLOSE:
            log.info("closing a connection that sends too many frames (user %s)", conn.user_id)
            conn.abandon_replay()
            goodbye = _error("rate_limited", "Too many frames: closing the connection.")
            conn.send_then_close(goodbye, *Close.TOO_MANY)
            continue
        if verdict is Verdict.WARN:
            conn.offer(_error("rate_limited", "Too many frames: slow down, or be disconnected."))
        if verdict is not Verdict.ALLOW:
            continue
        if problem is not None:
            conn.offer(problem)
            continue
        await _handle(kind, frame, conn, app)


def _parse(raw: str | bytes, max_bytes: int) -> tuple[dict[str, Any], str, Frame | None]:
    """The frame and its type, or the error frame that answers it."""
    size = len(raw) if isinstance(raw, bytes) or raw.isascii() else len(raw.encode())
    if size > max_bytes:
        return {}, "", _error("frame_too_large", f"Frames are at most {max_bytes} bytes.")
    try:
        frame = orjson.loads(raw)
        kind = frame["type"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return {}, "", _error("bad_frame", "Frames are JSON objects with a type.")
    if not isinstance(kind, str):
        return {}, "", _error("bad_frame", "Frames are JSON objects with a type.")
    return frame, kind, None


async def _handle(kind: str, frame: dict[str, Any], conn: Connection, app: Any) -> None:
    ref = frame.get("ref")
    try:
        if kind == "ping":
            if conn.reads is not None:
                await conn.reads.flush()  # a pong means the reads sent before it are written
            conn.offer(Frame("pong", Pong().encode().decode()))
        elif kind == "read":
            _note_read(conn, app, _int(frame, "conversation_id"), _int(frame, "message_id"), ref)
        elif kind == "resume":
            after = _int(frame, "last_message_id", minimum=0)
            if conn.resumer is not None and not conn.resumer.done():
                raise AppError(
                    "A resume is already running; send it again once it is done.",
                    code="resume_in_progress",
                    status=409,
                )
            ctx = await _run(conn, app, ref, _itself)
            if ctx is not None:
                # parked from here, not from when the task first runs: a frame the client sent
                # after the resume (a ping) is answered after the replay, never before it
                conn.begin_replay()
                conn.resumer = asyncio.ensure_future(resume.replay(ctx, conn, after, parked=True))
        elif kind == "typing":
            conversation_id = _int(frame, "conversation_id")
            await _run(
                conn, app, ref, lambda ctx: typing(ctx, app.state.hub.typing, conversation_id)
            )
        else:
            conn.offer(_error("unknown_frame", f"Unknown frame type: {kind[:40]}."))
    except AppError as exc:
        conn.offer(_error(exc.code, exc.message, ref=ref))


async def _itself(ctx: Ctx) -> Ctx:
    return ctx


async def _run(
    conn: Connection, app: Any, ref: Any, work: Callable[[Ctx], Awaitable[T]]
) -> T | None:
    """One unit of work for one client frame, committed; a refusal becomes an error frame."""
    uow = app.state.runtime.uow()
    try:
        result = await work(await _ctx(conn, app, uow))
        await uow.commit()
        return result
    except AppError as exc:
        await uow.rollback()
        conn.offer(_error(exc.code, exc.message, ref=ref))
        return None
    finally:
        await uow.close()


def _note_read(conn: Connection, app: Any, conversation_id: int, message_id: int, ref: Any) -> None:
    if conn.reads is None:

        async def write(conversation_id: int, message_id: int, ref: Any) -> int | None:
            async def mark(ctx: Ctx) -> int:
                return (await changes.mark_read(ctx, conversation_id, message_id)).message_id

            return await _run(conn, app, ref, mark)

        interval = app.state.runtime.settings.ws_read_interval_seconds
        conn.reads = ReadMarks(interval, write)
    conn.reads.note(conversation_id, message_id, ref)


async def _ctx(conn: Connection, app: Any, uow: Any) -> Ctx:
    rt: Runtime = app.state.runtime
    viewer = await directory.get_principal(rt, conn.user_id)
    if viewer is None or viewer.is_suspended(rt.clock.now()):
        app.state.hub.close_user(conn.user_id, Close.FORBIDDEN, "account_suspended")
        raise NotAllowed("Your account is suspended.", code="account_suspended")
    return Ctx(rt=rt, sends=app.state.sends, viewer=viewer, uow=uow)


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
