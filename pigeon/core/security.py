"""Password hashing, access tokens and opaque refresh tokens."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import math
import os
import re
import secrets
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from pigeon.core.clock import Clock
from pigeon.settings import Settings

# PyJWT loads the `cryptography` package at import whenever it is installed (Web Push needs
# it), for RSA and EC algorithms that tokens here never use: they are HS256, which needs only
# hashlib. That is some 10 MiB resident in every server process, so PyJWT is imported with the
# package hidden, unless something loaded it already; Web Push loads it at its first use.
if "cryptography" in sys.modules:
    import jwt
else:
    sys.modules["cryptography"] = None  # type: ignore[assignment]  # "not installed"
    try:
        import jwt
    finally:
        del sys.modules["cryptography"]

T = TypeVar("T")

# the weakest argon2id settings OWASP accepts (memory, time; one lane): below them a stolen
# database gives up its passwords too cheaply, so the server says so at start-up
OWASP_FLOOR_KIB, OWASP_FLOOR_TIME = 19 * 1024, 2


class Passwords:
    """Argon2id, off the event loop and a few at a time.

    A hash is slow on purpose (about 20 ms of one core with the defaults, more if set so). Run on
    the event loop it would stall every request and every live delivery behind it, so each one
    runs in a worker thread (argon2 releases the GIL while it works). Callers hash before their
    transaction begins and verify after their read has ended, so no lock or pooled connection is
    held while it runs. At most `concurrency` run at once: a flood of sign-ins queues here
    instead of taking every core from delivery. Their threads also run at a lower priority
    (`HASHING_NICE`): on a core shared with the event loop, the loop's deliveries go first
    and the hashes take what is left, instead of a time slice at a time.
    """

    def __init__(self, *, time_cost: int, memory_kib: int, concurrency: int = 2) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._concurrency = max(1, concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._dummy: str | None = None

    @property
    def below_owasp_floor(self) -> bool:
        h = self._hasher
        return h.memory_cost < OWASP_FLOOR_KIB or h.time_cost < OWASP_FLOOR_TIME

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check a password; with no hash (no such user) it spends the same time and fails."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            await self._run(self._check, self._dummy, password)
            return False
        return await self._run(self._check, password_hash, password)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _run(self, fn: Callable[..., T], *args: str) -> T:
        async with self._slots:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    self._concurrency, "pigeon-hash", initializer=_lower_priority
                )
            return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None


# how much lower a hashing thread's priority is (Linux nice): at 10 it gets about a tenth of
# a core that the event loop also wants, and all of one the loop leaves idle
HASHING_NICE = 10


def _lower_priority() -> None:
    # not Linux, or not allowed: hashing still works, at the usual priority
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICE)


# --- tokens ---

ALGORITHM = "HS256"
MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases
_USER_ID = re.compile(r"[1-9][0-9]{0,9}")
_FAMILY_ID = re.compile(r"[0-9a-f]{32}")


def new_family_id() -> str:
    """A sign-in's id: every access token, session cookie and refresh token of it names it."""
    return secrets.token_hex(16)


def create_access_token(
    key: str,
    *,
    user_id: int,
    minutes: int,
    issued_at: dt.datetime,
    kind: str = "access",
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed token. Every token a client may present names its sign-in (`fid` in `extra`),
    and `Tokens.read` refuses one that does not. The same arguments give the same token."""
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "typ": kind,
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + dt.timedelta(minutes=minutes)).timestamp()),
    }
    if extra:
        claims.update(extra)
    return jwt.encode(claims, key, algorithm=ALGORITHM)


class Tokens:
    """One app's tokens, signed with its key and read against its clock.

    A token that is signed with our key but carries a claim of the wrong shape is as invalid
    as a forged one. A signature, once verified, is remembered (a token never changes); expiry
    is checked on every read.
    """

    MAX_VERIFIED = 10_000

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self._settings = settings
        self.clock = clock
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(
        self,
        *,
        user_id: int,
        minutes: int,
        kind: str = "access",
        extra: dict[str, Any] | None = None,
        issued_at: dt.datetime | None = None,
    ) -> str:
        return create_access_token(
            self._settings.signing_key(),
            user_id=user_id,
            minutes=minutes,
            kind=kind,
            extra=extra,
            issued_at=issued_at or self.clock.now(),
        )

    def read(self, token: str, *, kind: str = "access") -> dict[str, Any] | None:
        """The token's claims, or None when it is malformed, forged, expired or of another
        kind. On success `user_id` (int) and `family_id` (str) are among the claims."""
        claims = self._verified.get(token)
        if claims is None:
            claims = verify_token(self._settings.signing_key(), token)
            if claims is None:
                return None
            if len(self._verified) >= self.MAX_VERIFIED:
                self._verified.clear()
            self._verified[token] = claims
        if claims["typ"] != kind or claims["exp"] < self.clock.now().timestamp():
            return None
        return claims


def verify_token(key: str, token: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            # expiry is checked in Tokens.read, against the app's clock
            options={
                "verify_exp": False,
                "verify_iat": False,
                "require": ["sub", "exp", "typ", "fid"],
            },
        )
    except jwt.PyJWTError:
        return None
    sub, fid = claims.get("sub"), claims.get("fid")
    if not (isinstance(sub, str) and _USER_ID.fullmatch(sub) and int(sub) <= MAX_ID):
        return None
    if not (isinstance(fid, str) and _FAMILY_ID.fullmatch(fid)):
        return None
    if not isinstance(claims.get("typ"), str) or not _is_time(claims["exp"]):
        return None
    if "iat" in claims and not _is_time(claims["iat"]):
        return None
    claims["user_id"], claims["family_id"] = int(sub), fid
    return claims


def _is_time(value: object) -> bool:
    """A JSON NumericDate: a finite number (and not a boolean, which Python counts as one)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


def successor_token(key: str, token: str) -> str:
    """The refresh token that replaces `token` when it is rotated.

    Derived rather than random, so that a second rotation of the same token (two tabs
    refreshing at once) can hand out the same successor while the server keeps only digests.
    Nobody can compute it without both the key and the token it replaces.
    """
    mac = hmac.new(key.encode(), b"refresh-successor:" + token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
