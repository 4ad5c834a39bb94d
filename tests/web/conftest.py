"""A real server and a real browser for the browser tests.

The server is uvicorn in a subprocess on a free port of 127.0.0.1, on a fresh SQLite data folder,
with people created through the services before it starts. The browser is Chromium driven by
Playwright; its path comes from PIGEON_TEST_CHROMIUM (default /usr/bin/chromium). Without it the
browser tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from pigeon.accounts import communities
from tests.conftest import IN_CI

CHROMIUM = os.environ.get("PIGEON_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser pass 123"

# username: (display name, tier, role)
CAST = {
    "admin": ("Ada Admin", "privileged_plus", "admin"),
    "pat": ("Pat Privileged", "privileged", "member"),
    "fred": ("Fred Free", "free", "member"),
    "nora": ("Nora Noscript", "privileged", "member"),
    "nick": ("Nick Noscript", "free", "member"),
    "xavier": ("Xavier Attacker", "privileged", "member"),
    "vic": ("Vic Viewer", "free", "member"),
    "maya": ("Maya Mobile", "privileged", "member"),
    "sam": ("Sam Reader", "free", "member"),
    "lena": ("Lena Bookseller", "privileged_plus", "manager"),
    "omar": ("Omar Other", "privileged", "member"),
    "mallory": ("<img src=x onerror=\"window.__xss='name'\">", "privileged", "member"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _seed(env: dict[str, str]) -> dict[str, int]:
    from pigeon.accounts import service as accounts
    from pigeon.admin import service as admin
    from tests.support.runtime import standalone

    ids: dict[str, int] = {}
    async with standalone(data=Path(env["PIGEON_DATA_DIR"])) as rt:
        async with rt.uow_scope() as uow:
            await communities.default_community(uow)
            for username, (name, tier, role) in CAST.items():
                user = await accounts.create_user(
                    uow,
                    email=f"{username}@example.com",
                    username=username,
                    password=PASSWORD,
                    passwords=rt.passwords,
                    display_name=name,
                    tier=tier,
                    role=role,
                )
                ids[username] = user.id
        async with rt.uow_scope() as uow:
            await admin.set_messaging(rt, uow, True, actor_id=ids["admin"], actor_label="admin")
    return ids


class Server:
    def __init__(self, url: str, ids: dict[str, int]) -> None:
        self.url, self.ids = url, ids


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("browser-server")
    data = root / "data"
    data.mkdir()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIGEON_")}
    env.update(
        {
            "PIGEON_DATA_DIR": str(data),
            "PIGEON_SECRET_KEY": "browser-" + uuid.uuid4().hex,
            "PIGEON_RATE_LIMITS_ENABLED": "false",
            "PIGEON_PASSWORD_HASH_TIME_COST": "1",
            "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
            "PIGEON_REDIS_PREFIX": "browser-" + uuid.uuid4().hex[:8],
        }
    )
    with ThreadPoolExecutor(1) as pool:  # its own thread: the test runner may hold a loop here
        ids = pool.submit(lambda: asyncio.run(_seed(env))).result()
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "pigeon.app:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start: " + (root / "server.log").read_text())
            time.sleep(0.1)
        yield Server(url, ids)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")  # Playwright's loop must be gone before async tests run
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (set PIGEON_TEST_CHROMIUM)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
