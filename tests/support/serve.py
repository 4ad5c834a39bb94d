"""A real `pigeon serve` process on the embedded default, for tests of what only the shipped
server does (its proxy handling, its logs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx


def environment(data: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a `pigeon` command on the embedded default in `data`."""
    found = {**os.environ, "PIGEON_DATA_DIR": str(data), **(env or {})}
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        found.pop(var, None)
    return found


@contextmanager
def pigeon_process(
    data: Path, env: dict[str, str] | None = None, log: IO[bytes] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Start the server on a free port with this data folder and these settings; yields its
    base address, once it answers, and the process (a test may kill it); stops it on leaving
    if it still runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "pigeon.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=environment(data, env),
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)


@contextmanager
def pigeon_serve(
    data: Path, env: dict[str, str] | None = None, log: IO[bytes] | None = None
) -> Iterator[str]:
    """`pigeon_process`, for a test that needs only the address."""
    with pigeon_process(data, env, log) as (base, _):
        yield base
