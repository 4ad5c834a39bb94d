"""A real server and a real browser for the browser tests.

The server is uvicorn in a subprocess on a free port of 127.0.0.1, on a fresh SQLite data folder,
with people created through the services before it starts. The browser is Chromium driven by
Playwright; its path comes from PIGEON_TEST_CHROMIUM (default /usr/bin/chromium). Without it the
browser tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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
    # the files tests'
    "pia": ("Pia Pictures", "privileged", "member"),
    "finn": ("Finn Friend", "free", "member"),
    "nell": ("Nell Noscript", "privileged", "member"),
    "dora": ("Dora Dusk", "privileged", "member"),
    # the reactions test's
    "rosa": ("Rosa Reacts", "privileged", "member"),
    "theo": ("Theo Thread", "free", "member"),
    # the thread tests'
    "ivy": ("Ivy Inbox", "privileged", "member"),
    "jon": ("Jon Jotter", "privileged", "member"),
    # the top bar test's: a manager with unread messages, and who sent them
    "mira": ("Mira Manager", "privileged", "manager"),
    "una": ("Una Unread", "privileged", "member"),
    # the message requests test's
    "reva": ("Reva Requester", "privileged", "member"),
    "ben": ("Ben Bystander", "free", "member"),
    "dex": ("Dex Dark", "free", "member"),
    # the installable app's and notifications' tests
    "pippa": ("Pippa Pocket", "privileged", "member"),
    "henri": ("Henri Hello", "privileged", "member"),
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
                    email_verified=True,  # no "verify your email" banner in the cast's pages
                )
                ids[username] = user.id
        async with rt.uow_scope() as uow:
            await admin.set_messaging(rt, uow, True, actor_id=ids["admin"], actor_label="admin")
    return ids


class Server:
    def __init__(self, url: str, ids: dict[str, int], data: Path | None = None) -> None:
        self.url, self.ids = url, ids
        self.data = data  # its data folder: a test may read what it queued (the outbox)


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
            "PIGEON_REGISTRATION": "open",
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
        yield Server(url, ids, data)
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


PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture
def open_as(chromium: Any, server: Server) -> Iterator[Any]:
    """open_as(username, js=True, viewport=PHONE) -> a signed-in page in its own context."""
    contexts: list[Any] = []
    problems: list[str] = []  # script errors and CSP violations on any page

    def _open(
        username: str, *, js: bool = True, viewport: dict[str, int] = DESKTOP, dark: bool = False
    ) -> Any:
        context = chromium.new_context(
            java_script_enabled=js,
            viewport=viewport,
            base_url=server.url,
            color_scheme="dark" if dark else "light",
        )
        context.set_default_timeout(8000)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "dialog",
            lambda d: (
                page.dialogs.append(d.message),
                d.accept() if page.accept_dialogs else d.dismiss(),
            ),
        )
        page.dialogs = []
        page.accept_dialogs = False  # a test that answers "OK" sets it
        page.on("pageerror", lambda e: problems.append(f"{username}: {e}"))
        page.on(
            "console",
            lambda m: (
                problems.append(f"{username}: {m.text}")
                if m.type == "error" and "Content Security Policy" in m.text
                else None
            ),
        )
        page.goto("/login")
        page.get_by_label("Username or email").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r"/messages$"))
        return page

    yield _open
    for context in contexts:
        context.close()
    assert problems == [], problems


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as _expect

    return _expect(locator)


def mark_no_reload(page: Any) -> None:
    page.evaluate("window.__stayed = true")


def assert_no_reload(page: Any) -> None:
    assert page.evaluate("window.__stayed === true"), "the page was reloaded"


def shot(page: Any, name: str) -> None:
    folder = os.environ.get("PIGEON_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def api_client(server: Server, username: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url + "/api/v1", timeout=10)
    r = client.post("/auth/login", json={"login": username, "password": PASSWORD})
    client.headers["Authorization"] = "Bearer " + r.json()["access_token"]
    return client
