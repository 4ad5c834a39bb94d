"""Two server processes sharing Redis hold one limit between them."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis

SECRET = "two-process-secret-" + uuid.uuid4().hex
PIGEON = Path(sys.executable).parent / "pigeon"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prepare(data: Path) -> dict[str, int]:
    """Both databases with two people and messaging on, before any server starts."""
    from pigeon.accounts import service as accounts
    from pigeon.admin import service as admin
    from tests.support.runtime import standalone

    async def go() -> dict[str, int]:
        async with standalone(data=data) as rt:
            ids = {}
            async with rt.uow_scope() as uow:
                for name, tier, role in (
                    ("pat", "privileged", "member"),
                    ("fay", "free", "member"),
                    ("ada", "privileged_plus", "admin"),
                ):
                    user = await accounts.create_user(
                        uow,
                        email=f"{name}@example.com",
                        username=name,
                        password="a long enough password",
                        passwords=rt.passwords,
                        tier=tier,
                        role=role,
                    )
                    ids[name] = user.id
            async with rt.uow_scope() as uow:
                await admin.set_messaging(rt, uow, True, actor_id=None, actor_label="test")
            return ids

    return asyncio.run(go())


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[str], dict[str, int]]]:
    """Two servers for the module's tests (each test uses its own people and limits)."""
    if not REDIS_URL:
        pytest.skip("PIGEON_TEST_REDIS_URL is not set")
    tmp_path = tmp_path_factory.mktemp("two-processes")
    data = tmp_path / "data"
    data.mkdir()
    ids = prepare(data)
    env = {
        **os.environ,
        "PIGEON_DATA_DIR": str(data),
        "PIGEON_REGISTRATION": "open",
        "PIGEON_SECRET_KEY": SECRET,
        "PIGEON_REDIS_URL": REDIS_URL,
        "PIGEON_REDIS_PREFIX": f"pigeon-test-{uuid.uuid4().hex}",
        "PIGEON_RATE_SEND_PER_MINUTE": "1",
        "PIGEON_RATE_SEND_BURST": "4",
        "PIGEON_RATE_LOGIN_PER_MINUTE": "3",
        "PIGEON_PASSWORD_HASH_TIME_COST": "1",
        "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
        "PIGEON_RETENTION_INTERVAL_SECONDS": "0",
        "PIGEON_LOG_LEVEL": "warning",
    }
    procs, urls, logs = [], [], []
    try:
        for n in range(2):
            port = free_port()
            logs.append(tmp_path / f"server{n}.log")
            with logs[-1].open("wb") as log:
                procs.append(
                    subprocess.Popen(
                        [str(PIGEON), "serve", "--host", "127.0.0.1", "--port", str(port)],
                        env=env,
                        cwd=tmp_path,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        for url, proc, log_path in zip(urls, procs, logs, strict=True):
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        yield urls, ids
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_limits_hold_across_processes(servers):  # type: ignore[no-untyped-def]
    from pigeon.core.security import create_access_token, new_family_id

    (a, b), ids = servers
    token = create_access_token(
        SECRET,
        user_id=ids["pat"],
        minutes=15,
        issued_at=dt.datetime.now(dt.UTC),
        extra={"fid": new_family_id()},
    )
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=10) as http:
        r = http.post(
            f"{a}/api/v1/conversations", json={"participant_ids": [ids["fay"]]}, headers=auth
        )
        assert r.status_code == 201, r.text
        conv = r.json()["id"]

        def send(url: str, n: int) -> httpx.Response:
            return http.post(
                f"{url}/api/v1/conversations/{conv}/messages", json={"body": f"m{n}"}, headers=auth
            )

        # a burst of four, split over both processes, then neither takes more
        assert [send(url, n).status_code for n, url in enumerate([a, b, a, b])] == [201] * 4
        for url in (a, b):
            r = send(url, 9)
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limited"
            assert int(r.headers["Retry-After"]) >= 1

        def login(url: str) -> httpx.Response:
            return http.post(f"{url}/api/v1/auth/login", json={"login": "fay", "password": "wrong"})

        assert [login(url).status_code for url in (a, b, a)] == [401] * 3
        assert login(b).status_code == 429
        assert login(a).status_code == 429


def test_a_suspension_reaches_the_other_process_within_a_second(servers):  # type: ignore[no-untyped-def]
    from pigeon.core.security import create_access_token, new_family_id

    (a, b), ids = servers

    def bearer(name: str) -> dict[str, str]:
        token = create_access_token(
            SECRET,
            user_id=ids[name],
            minutes=15,
            issued_at=dt.datetime.now(dt.UTC),
            extra={"fid": new_family_id()},
        )
        return {"Authorization": f"Bearer {token}"}

    with httpx.Client(timeout=10) as http:
        assert http.get(f"{b}/api/v1/auth/me", headers=bearer("fay")).status_code == 200
        r = http.post(
            f"{a}/api/v1/admin/users/{ids['fay']}/suspend", json={}, headers=bearer("ada")
        )
        assert r.status_code == 200, r.text
        suspended_at = time.monotonic()
        # a measured bound across processes, not a wait: poll until refused, at most 3 s
        while http.get(f"{b}/api/v1/auth/me", headers=bearer("fay")).status_code != 403:
            assert time.monotonic() - suspended_at < 3, "still accepted after 3 s"
            time.sleep(0.02)
        assert time.monotonic() - suspended_at < 0.5  # told at once, not at cache expiry
