"""The server process: uvicorn serving the app, its logging and its allocator.

`pigeon serve` reads its options and then becomes `python -m pigeon.server` (the same process,
a new image), so that the server does not hold the command line's libraries (Typer, Rich:
3 MiB) for its whole life. Host and port come from the settings (PIGEON_HOST, PIGEON_PORT).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import re
from typing import Any

from pigeon.settings import get_settings


class RedactSecrets(logging.Filter):
    """Blank credentials in the query strings the server logs (access lines, WebSocket
    handshakes): whoever reads a log must not be able to sign in with what is in it."""

    QUERY_SECRET = re.compile(
        r"([?&](?:access_token|token|ticket|invitation)=)[^&#\s\"']*", re.IGNORECASE
    )
    # an invitation's link is its token: /invitations/TOKEN, /api/v1/invitations/verify/TOKEN
    PATH_SECRET = re.compile(r"(/invitations/(?:verify/)?)[A-Za-z0-9_-]{20,}")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in record.args)
        return True

    @classmethod
    def redact(cls, text: str) -> str:
        return cls.PATH_SECRET.sub(r"\1[redacted]", cls.QUERY_SECRET.sub(r"\1[redacted]", text))


def server_log_config(log_format: str = "text", level: str = "info") -> dict[str, Any]:
    """Uvicorn's logging and the server's own, with secrets redacted on every handler and the
    current request's id on every line; in JSON, one object a line, and the server's own
    request lines (route templates, no paths or queries) instead of uvicorn's access lines."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    config["filters"]["request_context"] = {"()": "pigeon.core.logs.RequestContext"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).extend(["request_context", "redact_secrets"])
    config["loggers"]["pigeon"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    # everything else (asyncio, SQLAlchemy, the driver, Python's warnings once captured)
    # through the same handler: in JSON, no line of the server's log is anything else
    config["root"] = {
        "handlers": ["default"],
        "level": max(logging.WARNING, _level_number(level)),
    }
    if log_format == "json":
        config["formatters"] = {"json": {"()": "pigeon.core.logs.JsonFormatter"}}
        for handler in config["handlers"].values():
            handler["formatter"] = "json"
        config["loggers"]["uvicorn.access"] = {"handlers": [], "propagate": False}
    return config


def _level_number(level: str) -> int:
    """`PIGEON_LOG_LEVEL` as a number, with uvicorn's names (`trace` too)."""
    from uvicorn.config import LOG_LEVELS

    return LOG_LEVELS.get(level.lower(), logging.INFO)


def _tune_malloc() -> None:
    """With glibc: two malloc arenas instead of one per thread that allocates (the database
    threads, the send writer, hashing), whose fragments a server otherwise keeps; and large
    blocks (a password hash's 19 MiB) always mapped on their own, so that they go back to the
    system when freed instead of staying in the heap after a burst of sign-ins. Elsewhere,
    nothing changes."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(name)
        libc.mallopt(-8, 2)  # M_ARENA_MAX
        libc.mallopt(-3, 1024 * 1024)  # M_MMAP_THRESHOLD, which also stops it from growing


def run() -> None:
    import uvicorn

    settings = get_settings()
    _tune_malloc()
    logging.captureWarnings(True)  # as log records, through the server's handlers
    uvicorn.run(
        "pigeon.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="pigeon.realtime.upgrade:HttpProtocol",  # httptools, freed once a socket opens
        ws="pigeon.realtime.keepalive:Socket",  # uvicorn's sans-I/O socket, pinged from one timer
        ws_ping_interval=settings.ws_heartbeat_seconds,
        ws_ping_timeout=settings.ws_heartbeat_seconds,
        ws_per_message_deflate=False,  # small frames gain little; a zlib state per socket costs
        # bigger client frames are refused by the app anyway; past this, before they are buffered
        ws_max_size=max(64 * 1024, settings.ws_max_frame_bytes * 4),
        log_level=settings.log_level,
        # access lines are logged at info: above it, uvicorn would build each and drop it
        access_log=_level_number(settings.log_level) <= logging.INFO,
        log_config=server_log_config(settings.log_format, settings.log_level),
        # X-Forwarded-* is believed only from PIGEON_TRUSTED_PROXIES, by the app itself (so
        # every route and the rate limits see one client address); uvicorn's own handling
        # would trust 127.0.0.1 by default
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    run()
