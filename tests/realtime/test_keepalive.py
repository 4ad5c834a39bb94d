"""Keepalive: every live socket is pinged once an interval; one that stops answering is closed."""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import subprocess
import sys
from pathlib import Path

import httpx

from pigeon.realtime.keepalive import Heartbeat
from tests.realtime.conftest import serving
from tests.support.serve import environment, pigeon_serve

INTERVAL = 1.0  # a client that answers must not be taken for dead when the machine is busy


class RawClient:
    """A WebSocket client by hand, to see each ping, and to answer them or not."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.pings = 0

    @classmethod
    async def open(cls, port: int, token: str) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /api/v1/ws?token={token} HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server (unmasked): its opcode and payload."""
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        return first & 0x0F, await self.reader.readexactly(size)

    async def until_closed(self, *, answer: bool, within: float) -> tuple[int, str] | None:
        """Read frames for `within` seconds, counting pings (answered or not): the close, if any."""
        loop = asyncio.get_running_loop()
        end = loop.time() + within
        while (left := end - loop.time()) > 0:
            try:
                opcode, payload = await asyncio.wait_for(self.frame(), left)
            except TimeoutError:
                return None
            if opcode == 0x9:
                self.pings += 1
                if answer:  # a pong, masked as a client's frames must be (with a zero key)
                    self.writer.write(bytes([0x8A, 0x80 | len(payload)]) + bytes(4) + payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0]
                return code, payload[2:].decode()
        return None


async def test_a_socket_that_answers_stays_and_one_that_stops_answering_is_closed_1011(app, people):
    async with serving(app, ping_interval=INTERVAL) as server:
        answering = await RawClient.open(server.port, people.priv.token)
        silent = await RawClient.open(server.port, people.free.token)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def timed(client: RawClient, **how: bool | float) -> tuple[object, float]:
                closed = await client.until_closed(**how)  # type: ignore[arg-type]
                return closed, loop.time() - started

            (silent_end, took), (answering_end, _) = await asyncio.gather(
                timed(silent, answer=False, within=4 * INTERVAL),
                timed(answering, answer=True, within=6 * INTERVAL),
            )
            # the silent one's first ping came within an interval; the close, one interval later
            assert silent_end == (1011, "keepalive ping timeout")
            assert silent.pings == 1
            assert took <= 2 * INTERVAL + 0.5  # with room for a busy machine
            assert await silent.reader.read() == b""  # and the server hung up
            # the one that answers was pinged once an interval and stays, well past two of them
            assert answering_end is None
            assert 5 <= answering.pings <= 7
            live = await server.connect(people.priv)  # and the server still serves
            await live.send(type="ping")
            assert (await live.next("pong"))["type"] == "pong"
        finally:
            for client in (answering, silent):
                client.writer.close()


def test_the_shipped_server_pings_every_heartbeat_and_closes_a_peer_that_stopped(tmp_path: Path):
    """`pigeon serve` as shipped, with `PIGEON_WS_HEARTBEAT_SECONDS`: its sockets are ours."""
    env = {
        "PIGEON_PASSWORD_HASH_TIME_COST": "1",
        "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
        "PIGEON_WS_HEARTBEAT_SECONDS": "0.5",
        "PIGEON_LOG_LEVEL": "warning",
        "PIGEON_REGISTRATION": "open",
    }
    data = tmp_path / "data"
    enable = [sys.executable, "-m", "pigeon.cli", "messaging", "enable"]
    subprocess.run(enable, env=environment(data, env), check=True, capture_output=True)
    with pigeon_serve(data, env) as base:
        who = {"email": "ada@example.org", "username": "ada", "password": "a long passphrase"}
        r = httpx.post(f"{base}/api/v1/auth/register", json=who)
        assert r.status_code == 201, r.text
        token, port = r.json()["access_token"], int(base.rpartition(":")[2])

        async def stay_silent() -> tuple[tuple[int, str] | None, int]:
            client = await RawClient.open(port, token)
            try:
                return await client.until_closed(answer=False, within=3.0), client.pings
            finally:
                client.writer.close()

        closed, pings = asyncio.run(stay_silent())
    assert closed == (1011, "keepalive ping timeout") and pings == 1


class Beaten:
    def __init__(self) -> None:
        self.slot: int | None = None
        self.payloads: list[bytes] = []

    def beat(self, payload: bytes) -> None:
        self.payloads.append(payload)


async def test_pings_are_spread_evenly_over_the_interval_and_stop_with_the_last_socket():
    loop = asyncio.get_running_loop()
    heartbeat = Heartbeat(loop, interval=0.4)
    ticks = heartbeat.ticks
    assert ticks > 1
    sockets = [Beaten() for _ in range(3 * ticks)]
    for s in sockets:
        heartbeat.add(s)  # type: ignore[arg-type]
    assert sorted(map(len, heartbeat.slots)) == [3] * ticks  # each tick pings the same number

    while heartbeat.beats < 2 * ticks:  # two intervals
        await asyncio.sleep(0.05)
    beats = heartbeat.beats
    for s in sockets:  # each was pinged by its own slot's ticks, and by no other
        assert s.slot is not None
        assert len(s.payloads) == len(range(s.slot, beats, ticks)) >= 2
    # a tick sends one payload to its slot; another tick, another payload
    assert len({s.payloads[0] for s in sockets}) == ticks

    gone = sockets[0]
    heartbeat.discard(gone)  # type: ignore[arg-type]
    before, kept = len(gone.payloads), len(sockets[ticks].payloads)  # the same slot
    await asyncio.sleep(0.5)  # past that slot's next tick
    assert len(gone.payloads) == before and gone.slot is None
    assert len(sockets[ticks].payloads) > kept  # while the others of its slot are still pinged

    for s in sockets[1:]:
        heartbeat.discard(s)  # type: ignore[arg-type]
    await asyncio.sleep(0.3)
    assert heartbeat.timer is None and not any(heartbeat.slots)  # nothing left: no timer ticks on
