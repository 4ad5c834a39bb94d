"""Lean load-generator clients: keep-alive HTTP, live WebSockets, and idle sockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson

# --- a lean HTTP/1.1 keep-alive client, so the load generator is not the bottleneck ---


class RawHTTP:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> RawHTTP:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(
        self, method: str, path: str, body: bytes = b"", token: str | None = None
    ) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length) if length else b""

    def close(self) -> None:
        self.writer.close()


# --- live clients ---


class Tally:
    def __init__(self) -> None:
        self.sent: dict[int, tuple[float, int]] = {}  # seq -> (t0, recipient)
        self.acked: set[int] = set()
        self.received: set[int] = set()
        self.latencies: list[float] = []
        self.received_at: list[float] = []  # when each of `latencies` arrived
        self.ack_latencies: list[float] = []
        self.duplicates = 0
        self.errors = 0
        self.frames = 0


async def client(
    port: int, user_id: int, token: str, tally: Tally, ready: asyncio.Event, opened: list[int]
) -> Any:
    from websockets.asyncio.client import connect

    ws = await connect(
        f"ws://127.0.0.1:{port}/api/v1/ws?token={token}",
        compression=None,
        ping_interval=None,
        max_queue=None,
    )
    await ws.recv()  # hello
    opened[0] += 1
    if opened[0] == opened[1]:
        ready.set()

    async def read() -> None:
        seen: set[int] = set()
        loads, now = orjson.loads, time.perf_counter
        with contextlib.suppress(Exception):
            async for raw in ws:
                tally.frames += 1
                frame = loads(raw)
                if frame["type"] != "message.new":
                    continue
                at = now()
                mid = frame["id"]
                if mid in seen:
                    tally.duplicates += 1
                    continue
                seen.add(mid)
                cmid = frame["data"].get("client_msg_id") or ""
                if cmid.startswith("b"):
                    seq = int(cmid[1:])
                    t0, recipient = tally.sent.get(seq, (0.0, -1))
                    if recipient == user_id:
                        tally.received.add(seq)
                        tally.latencies.append(at - t0)
                        tally.received_at.append(at)

    return ws, asyncio.ensure_future(read())


async def send_one(
    http: RawHTTP,
    tally: Tally,
    seq: int,
    conv: tuple[int, int, int],
    tokens: dict[int, str],
    turn: int,
) -> None:
    """Message `seq` in `conv`, from one side on even turns and from the other on odd ones: a
    conversation both sides talk in, not a message request one side keeps sending."""
    conv_id, a, b = conv
    sender, recipient = (a, b) if turn % 2 == 0 else (b, a)
    body = orjson.dumps({"body": f"bench message {seq}", "client_msg_id": f"b{seq}"})
    t0 = time.perf_counter()
    tally.sent[seq] = (t0, recipient)
    status, _ = await http.request(
        "POST", f"/api/v1/conversations/{conv_id}/messages", body, tokens[sender]
    )
    if status == 201:
        tally.acked.add(seq)
        tally.ack_latencies.append(time.perf_counter() - t0)
    else:
        tally.errors += 1


# --- idle connections: a minimal client that only answers pings ---


class IdleSocket(asyncio.Protocol):
    def __init__(self, request: bytes, hello: asyncio.Future[bool]) -> None:
        self.request, self.hello = request, hello
        self.buf = b""
        self.upgraded = False
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.upgraded:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if b" 101 " not in self.buf[:end]:
                self._done(False)
                return
            self.upgraded, self.buf = True, self.buf[end + 4 :]
        while len(self.buf) >= 2:
            opcode, size, start = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if size == 126:
                if len(self.buf) < 4:
                    return
                size, start = int.from_bytes(self.buf[2:4], "big"), 4
            elif size == 127:
                if len(self.buf) < 10:
                    return
                size, start = int.from_bytes(self.buf[2:10], "big"), 10
            if len(self.buf) < start + size:
                return
            payload, self.buf = self.buf[start : start + size], self.buf[start + size :]
            if opcode == 0x9:  # ping: answer with a masked pong (zero mask key)
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif opcode == 0x1:
                self._done(True)
            elif opcode == 0x8:
                self._done(False)

    def _done(self, ok: bool) -> None:
        if not self.hello.done():
            self.hello.set_result(ok)

    def connection_lost(self, exc: Exception | None) -> None:
        self._done(False)
