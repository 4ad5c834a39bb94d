"""Reading the emails a test's SMTP server received, and following their links."""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import Any

from pigeon.email import worker
from pigeon.settings import Settings
from tests.support.smtp import SmtpServer

PUBLIC_URL = "https://chat.example.org"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/[a-z/-]+)\?token=([A-Za-z0-9_-]+)")


def with_email(settings: Settings, smtp: SmtpServer, **more: Any) -> Settings:
    """Email on, through the test's SMTP server; the background worker off, so that each test
    delivers when it says so; and whatever else the test sets."""
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_tls": "none",
            "smtp_from": "pigeon@example.org",
            "public_url": PUBLIC_URL,
            "email_worker_interval_seconds": 0,
            **more,
        }
    )


async def inbox(app: Any, smtp: SmtpServer, to: str) -> list[EmailMessage]:
    """Deliver what is due (the outbox worker, as the server runs it), then everything the
    SMTP server received for `to`."""
    await worker.deliver_exclusive(app.state.runtime)
    return [m for m in smtp.messages if str(m["To"]) == to]


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(msg: EmailMessage) -> tuple[str, str]:
    """(path, token) of the link in the email's text."""
    found = LINK.search(text_of(msg))
    assert found, text_of(msg)
    return found.group(1), found.group(2)
