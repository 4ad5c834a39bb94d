"""Password hashing, access tokens and opaque refresh tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pigeon.core.clock import clock

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("pigeon-timing-equaliser")


def configure_hashing(*, time_cost: int, memory_kib: int) -> None:
    """Argon2 cost; the defaults suit a server, tests turn it down to stay fast."""
    global _hasher, _DUMMY_HASH
    if (_hasher.time_cost, _hasher.memory_cost) != (time_cost, memory_kib):
        _hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        _DUMMY_HASH = _hasher.hash("pigeon-timing-equaliser")


ALGORITHM = "HS256"


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; also spends the same time when there is no user to check against."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def create_access_token(
    key: str,
    *,
    user_id: int,
    minutes: int,
    kind: str = "access",
    extra: dict[str, Any] | None = None,
) -> str:
    now = clock.now()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "typ": kind,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=minutes)).timestamp()),
    }
    if extra:
        claims.update(extra)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


_verified: dict[tuple[str, str], dict[str, Any]] = {}
_VERIFIED_MAX = 10_000


def decode_token(key: str, token: str, *, kind: str = "access") -> dict[str, Any] | None:
    """The token's claims, or None when it is malformed, forged, expired or of another kind.

    A signature, once verified, is remembered (a token never changes); expiry is checked on
    every call against the clock.
    """
    claims = _verified.get((key, token))
    if claims is None:
        claims = _verify(key, token)
        if claims is None:
            return None
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[(key, token)] = claims
    if claims.get("typ") != kind or claims["exp"] < clock.now().timestamp():
        return None
    return claims


def _verify(key: str, token: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            # expiry is checked in decode_token against the injectable clock
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "typ"]},
        )
    except jwt.PyJWTError:
        return None
    try:
        claims["user_id"] = int(claims["sub"])
    except (TypeError, ValueError):
        return None
    return claims


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
