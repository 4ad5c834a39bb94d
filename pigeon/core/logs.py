"""Logs an operator can search: one JSON object a line (`PIGEON_LOG_FORMAT=json`), each with
the request it belongs to, and one line a request saying who asked for which route, how it
ended and how long it took.

What a line may say is decided here, not by whoever logs: a request line names the route's
template (`/api/v1/conversations/{conversation_id}/messages`), never the path or the query it
was asked with, so no message text, token or ticket reaches the log through it. The request id
comes from `X-Request-ID` when a proxy set a sane one, else it is made here; either way it goes
back in the response, so a member's report and the log line meet.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import random
import re
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.core import metrics

# the request being served: a dict so that what a dependency adds (the user) is seen by the
# middleware that logs the request, whichever task or context copy the dependency ran in
_request: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "pigeon_request", default=None
)
GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
request_log = logging.getLogger("pigeon.request")
# the attributes every LogRecord has; anything else on a record was passed as `extra`
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def set_user(user_id: int) -> None:
    """Say who the current request acts for (called where a request is authenticated)."""
    current = _request.get()
    if current is not None:
        current["user_id"] = user_id


def current_request_id() -> str | None:
    current = _request.get()
    return current["request_id"] if current else None


class RequestContext(logging.Filter):
    """Put the current request's id and user on every record logged while serving it."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _request.get()
        if current is not None:
            record.request_id = current["request_id"]
            if current.get("user_id") is not None:
                record.user_id = current["user_id"]
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and whatever was passed as
    `extra` (request id, user id, route, status, duration)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key != "color_message":
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class RequestLog:
    """Give each HTTP request and WebSocket an id (answered in `X-Request-ID`), and log each
    request once it is answered when `log_requests` is on."""

    def __init__(self, app: ASGIApp, *, log_requests: bool) -> None:
        self.app, self.log_requests = app, log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request_id = _given_id(scope) or new_request_id()
        current: dict[str, Any] = {"request_id": request_id}
        token = _request.set(current)
        started = time.perf_counter()
        status = 0
        header = (b"x-request-id", request_id.encode())

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] in ("http.response.start", "websocket.accept"):
                status = message.get("status", 101)
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            status = 500
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(scope)
            if scope["type"] == "http":
                metrics.request_duration.labels(
                    scope["method"], route, f"{status // 100}xx"
                ).observe(elapsed)
            if self.log_requests:
                request_log.info(
                    "request",
                    extra={
                        "method": scope.get("method", "WEBSOCKET"),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            _request.reset(token)


class AnsweredRoute:
    """`scope["route"]` for a request answered in front of the router (`messaging.hot`,
    `realtime.api.LiveRoute`): what the request log and the metrics read as the matched
    route, its template the path it was answered for."""

    def __init__(self, path: str) -> None:
        self.path = path


def route_template(scope: Scope) -> str:
    """The matched route as its template: the path with each parameter's segment put back as
    `{name}` (a username, an id, a token in a path never reaches the log); "(no route)" for a
    path that matched none."""
    if scope.get("route") is None:
        return "(no route)"
    params = [(name, str(value)) for name, value in scope.get("path_params", {}).items()]
    segments = scope["path"].split("/")
    for i, segment in enumerate(segments):
        for j, (name, value) in enumerate(params):
            if segment == value:
                segments[i] = "{" + name + "}"
                del params[j]
                break
    if params:  # a parameter spanning segments ({path:path}): say only where it starts
        return "(unnamed route)"
    return "/".join(segments)


def new_request_id() -> str:
    """32 hex digits, unique enough to find one request in the logs. Not `uuid4`: its
    `os.urandom` lets go of the interpreter's lock for a system call, and on a busy server the
    event loop then waits for the lock behind the database thread, once a request. An id needs
    no secrecy; `random` is seeded from the system at start and again in a forked child."""
    return f"{random.getrandbits(128):032x}"


def _given_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if GIVEN_ID.fullmatch(text) else None
    return None
