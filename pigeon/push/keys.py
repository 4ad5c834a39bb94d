"""The server's VAPID identity: the key pair push services know it by, and the contact.

Browsers bind each subscription to the public key (the "application server key") given to
`pushManager.subscribe`; every push is signed with the private key, so the pair must outlive
restarts (`Settings.vapid_key` keeps a generated one in the data folder).
"""

from __future__ import annotations

import base64
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid

from pigeon.settings import Settings


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Strict base64url (padding optional); ValueError for anything else."""
    text = text.strip()
    if not text or any(c not in _ALPHABET for c in text.rstrip("=")):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    return Vapid.from_string(private_key=private_key)


def vapid(settings: Settings) -> Vapid:
    """The signer (parsed once per key)."""
    return _vapid(settings.vapid_key())


def public_key(settings: Settings) -> str:
    """The application server key: the uncompressed P-256 point, base64url."""
    point = vapid(settings).public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return b64url(point)


def subject(settings: Settings) -> str:
    """Whom push services may contact about our pushes."""
    if settings.vapid_subject:
        return settings.vapid_subject
    if settings.smtp_from:
        return f"mailto:{settings.smtp_from}"
    url = urlsplit(settings.public_url)
    if url.scheme == "https" and url.hostname and url.port is None:
        return f"https://{url.hostname}"
    return f"mailto:admin@{url.hostname or 'localhost'}"


def check(settings: Settings) -> None:
    """At start-up: a configured key that is not a P-256 private key stops the server with a
    clear message, instead of failing every push and every subscription later."""
    try:
        public_key(settings)
    except Exception as exc:
        raise RuntimeError(
            "PIGEON_VAPID_PRIVATE_KEY is not a P-256 private key (base64url, raw or DER)"
        ) from exc
