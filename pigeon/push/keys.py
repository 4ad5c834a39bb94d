"""The server's VAPID identity: the key pair push services know it by, and the contact.

Browsers bind each subscription to the public key (the "application server key") given to
`pushManager.subscribe`; every push is signed with the private key, so the pair must outlive
restarts (`Settings.vapid_key` keeps a generated one in the data folder).

The signing libraries (py_vapid and `cryptography`, some 10 MiB resident) are loaded at the
first push or subscription, not at start.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pigeon.settings import P256_ORDER, Settings

if TYPE_CHECKING:
    from py_vapid import Vapid


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
    from py_vapid import Vapid

    return Vapid.from_string(private_key=private_key)


def vapid(settings: Settings) -> Vapid:
    """The signer (parsed once per key)."""
    return _vapid(settings.vapid_key())


def public_key(settings: Settings) -> str:
    """The application server key: the uncompressed P-256 point, base64url."""
    from cryptography.hazmat.primitives import serialization

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


def _raw_private_key(text: str) -> bool:
    """Whether `text` is a P-256 private key in raw form: 32 bytes, base64url, a number from 1
    to the curve's order less one. That is all a private key must be, so a raw key is
    checked without loading the signing libraries."""
    try:
        raw = b64url_decode(text)
    except ValueError:
        return False
    return len(raw) == 32 and 0 < int.from_bytes(raw, "big") < P256_ORDER


def check(settings: Settings) -> None:
    """At start-up: a configured key that is not a P-256 private key stops the server with a
    clear message, instead of failing every push and every subscription later. A raw key is
    checked as it stands; a DER one is parsed."""
    if _raw_private_key(settings.vapid_key()):
        return
    try:
        public_key(settings)
    except Exception as exc:
        raise RuntimeError(
            "PIGEON_VAPID_PRIVATE_KEY is not a P-256 private key (base64url, raw or DER)"
        ) from exc
