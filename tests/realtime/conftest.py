"""A real server on a free port for the app under test, and a small WebSocket client for it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pigeon.realtime.frames import server_frame
from pigeon.realtime.keepalive import Socket
from pigeon.realtime.upgrade import HttpProtocol

TIMEOUT = 5.0


def besides_presence(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames that are not presence. Someone's coming online is announced by a task of its
    own, so whether it reaches a socket before or after a test's other frames is not fixed."""
    return [f for f in frames if f["type"] != "presence"]


class Live:
    """A connected client: reads frames, and can wait until everything sent so far arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def send(self, **frame: Any) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame; every one must be a frame of the protocol (`ServerFrame`)."""
        frame = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        server_frame.validate_python(frame)
        self.frames.append(frame)
        return frame

    async def next(self, type: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next frame of a type, skipping others."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == type:
                return frame

    async def drain(self) -> list[dict[str, Any]]:
        """Every frame up to a ping's pong: the server queues the pong behind all of them."""
        await self.send(type="ping")
        got = []
        while True:
            frame = await self.recv()
            if frame["type"] == "pong":
                return got
            got.append(frame)

    async def closed(self, timeout: float = TIMEOUT) -> tuple[int | None, str | None]:
        """Wait for the server to close; the close code and reason."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    self.frames.append(orjson.loads(await self.ws.recv()))
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (None, None)

    async def close(self) -> None:
        await self.ws.close()


class Server:
    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self.clients: list[Live] = []

    def url(self, token: str | None = None) -> str:
        base = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        return f"{base}?token={token}" if token else base

    async def connect(
        self, who: Any = None, *, token: str | None = None, hello: bool = True, **kwargs: Any
    ) -> Live:
        ws = await connect(self.url(token or (who.token if who else None)), **kwargs)
        live = Live(ws)
        self.clients.append(live)
        if hello:
            frame = await live.recv()
            assert frame["type"] == "hello", frame
        return live


@contextlib.asynccontextmanager
async def serving(app, ping_interval: float | None = None) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    """Serve an app (its lifespan already running) over real sockets, with the server's socket."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        app,
        lifespan="off",
        http=HttpProtocol,
        ws=Socket,
        log_level="warning",
        ws_ping_interval=ping_interval,
        ws_ping_timeout=ping_interval,
        ws_per_message_deflate=False,
    )
    srv = uvicorn.Server(config)
    srv.install_signal_handlers = False  # type: ignore[attr-defined]
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    while not srv.started:
        await asyncio.sleep(0.01)
    live = Server(app)
    live.port = sock.getsockname()[1]
    try:
        yield live
    finally:
        for client in live.clients:
            with contextlib.suppress(Exception):
                await client.close()
        srv.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def server(app) -> AsyncIterator[Server]:  # type: ignore[no-untyped-def]
    """Serve the test's app over real sockets."""
    async with serving(app) as live:
        yield live
