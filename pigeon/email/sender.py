"""One email over SMTP, with the standard library's smtplib in a worker thread.

TLS modes: `starttls` (connect in plain, then upgrade; the server must offer it), `tls` (TLS
from the first byte) and `none` (a relay on this machine). Certificates are checked with the
system's trust store. Login only when a username is set. A failure raises `SendFailed` with a
message for the outbox row and the operator, never containing the password.
"""

from __future__ import annotations

import asyncio
import contextlib
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from urllib.parse import urlsplit

import orjson

from pigeon.email.models import OutboxEmail
from pigeon.settings import Settings

MAX_ERROR_CHARS = 1000


class SendFailed(Exception):
    """The SMTP server could not be reached, or would not take the email."""


def from_address(settings: Settings) -> str:
    return settings.smtp_from or f"noreply@{urlsplit(settings.public_url).hostname or 'localhost'}"


def build_message(settings: Settings, row: OutboxEmail) -> EmailMessage:
    """Plain text first, HTML as the alternative, from the community's name, with the extra
    headers the email was queued with."""
    sender = from_address(settings)
    msg = EmailMessage()
    msg["From"] = formataddr((settings.default_community_name, sender))
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    msg["Date"] = format_datetime(row.created_at)
    # the same for every attempt: a copy sent again after a crash between the SMTP server's
    # answer and the row being marked sent is recognisably the same email, not a second one
    stamp = int(row.created_at.timestamp() * 1000)
    msg["Message-ID"] = f"<outbox-{row.id}.{stamp}@{sender.rpartition('@')[2]}>"
    for name, value in (orjson.loads(row.headers) if row.headers else {}).items():
        msg[name] = value  # checked when queued (`outbox.check_headers`)
    msg.set_content(row.text_body)
    msg.add_alternative(row.html_body, subtype="html")
    return msg


def _describe(exc: BaseException, settings: Settings) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        detail = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        text = f"SMTP {exc.smtp_code}: {detail}"
    elif isinstance(exc, smtplib.SMTPRecipientsRefused):
        text = "recipient refused: " + "; ".join(
            f"{code} {reply.decode('utf-8', 'replace')}" for code, reply in exc.recipients.values()
        )
    elif isinstance(exc, ConnectionRefusedError):
        text = f"cannot connect to {settings.smtp_host}:{settings.smtp_port} (connection refused)"
    elif isinstance(exc, TimeoutError | smtplib.SMTPServerDisconnected | OSError):
        text = f"{type(exc).__name__} talking to {settings.smtp_host}:{settings.smtp_port}: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
    if password:
        text = text.replace(password, "[redacted]")
    return " ".join(text.split())[:MAX_ERROR_CHARS]


@contextlib.contextmanager
def _session(settings: Settings) -> Iterator[smtplib.SMTP]:
    """A connection to the SMTP server, greeted, encrypted and signed in as the settings say."""
    host, port, timeout = (
        settings.smtp_host or "",
        settings.smtp_port,
        settings.smtp_timeout_seconds,
    )
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.smtp_tls == "tls":
        smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    with smtp:
        smtp.ehlo()
        if settings.smtp_tls == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_username, password)
        yield smtp


def _send(settings: Settings, msg: EmailMessage) -> None:
    with _session(settings) as smtp:
        smtp.send_message(msg)


def _greet(settings: Settings) -> None:
    with _session(settings) as smtp:
        smtp.noop()


async def check(settings: Settings) -> None:
    """Connect, greet, encrypt and sign in as a delivery would, and send nothing; SendFailed
    with the reason when that fails."""
    if not settings.smtp_host:
        raise SendFailed("email is off: PIGEON_SMTP_HOST is not set")
    try:
        await asyncio.to_thread(_greet, settings)
    except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as exc:
        raise SendFailed(_describe(exc, settings)) from None


async def send(settings: Settings, row: OutboxEmail) -> None:
    """Deliver `row` to the SMTP server; SendFailed (with a clear reason) when it is not taken."""
    if not settings.smtp_host:
        raise SendFailed("email is off: PIGEON_SMTP_HOST is not set")
    msg = build_message(settings, row)
    try:
        await asyncio.to_thread(_send, settings, msg)
    except (smtplib.SMTPException, OSError, ssl.SSLError, ValueError) as exc:
        raise SendFailed(_describe(exc, settings)) from None
