"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, a free port), keeping what it receives."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


class Inbox:
    """Every message the server accepted, parsed, with the envelope's recipients."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        parsed = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


class FreePortController(Controller):
    """aiosmtpd's controller on port 0: the port the system chose is read back before the
    controller's own start-up check connects to it."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class SmtpServer:
    def __init__(self, **smtp_options: Any) -> None:
        self.inbox = Inbox()
        self.controller = FreePortController(
            self.inbox, hostname="127.0.0.1", port=0, **smtp_options
        )

    @property
    def port(self) -> int:
        return int(self.controller.port)

    @property
    def messages(self) -> list[EmailMessage]:
        return self.inbox.messages


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def only_login(username: str, password: str) -> Any:
    """An authenticator that accepts one username and password."""

    def authenticate(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == username.encode()
            and data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return authenticate


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()
