"""Every email goes through the outbox: a server killed (SIGKILL) between the change that
queues an email and its delivery still sends it once it is back, exactly once, and a server
started again after the delivery sends nothing more."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.serve import environment, pigeon_process
from tests.support.smtp import SmtpServer, smtp  # noqa: F401

ENV = {
    "PIGEON_PASSWORD_HASH_TIME_COST": "1",
    "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
    "PIGEON_TUNE_GC": "false",
    "PIGEON_RATE_LIMITS_ENABLED": "false",
    "PIGEON_EMAIL_WORKER_INTERVAL_SECONDS": "0.2",
    "PIGEON_DIGEST_INTERVAL_SECONDS": "0",
}


def wait_for(smtp_server: SmtpServer, count: int, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while len(smtp_server.messages) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_server_killed_before_delivery_sends_the_email_once_back(
    tmp_path: Path,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    data = tmp_path / "data"
    password = "a long enough password"
    subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "admin", "create", "--email", "fran@example.org",
         "--username", "fran"],
        env=environment(data, ENV), input=f"{password}\n{password}\n".encode(), check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    # no SMTP host yet: the change commits, its email waits in the outbox; then kill -9
    with pigeon_process(data, ENV) as (base, proc):
        r = httpx.post(f"{base}/api/v1/auth/password/forgot", json={"email": "fran@example.org"})
        assert r.status_code == 202, r.text
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert smtp.messages == []

    mail = {"PIGEON_SMTP_HOST": "127.0.0.1", "PIGEON_SMTP_PORT": str(smtp.port),
            "PIGEON_SMTP_TLS": "none"}  # fmt: skip
    with pigeon_process(data, {**ENV, **mail}) as (base, proc):
        wait_for(smtp, 1)
        time.sleep(1.0)  # a second copy would have come by now
        proc.send_signal(signal.SIGKILL)
    [email] = smtp.messages
    assert email["To"] == "fran@example.org"
    assert "/password/reset?token=" in email.get_body(("plain",)).get_content()

    with pigeon_process(
        data, {**ENV, **mail}
    ):  # started again after the delivery: nothing goes out twice
        time.sleep(1.5)
    assert len(smtp.messages) == 1
