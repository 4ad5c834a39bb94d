"""Domain errors and the one place that turns any error into the envelope.

Every error a client sees is `{"error": {"code", "message", "fields"?}}`; nothing inside the
server (stack traces, SQL, paths) leaks, and a 5xx is always a bug.
"""

from __future__ import annotations

import inspect
import logging
import sys
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from pigeon.core import metrics

log = logging.getLogger("pigeon.errors")


class AppError(Exception):
    status = 400
    code = "bad_request"
    message = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.message
        self.code = code or self.code
        self.status = status or self.status
        self.fields = fields
        self.headers = headers
        super().__init__(self.message)


class BadRequest(AppError):
    pass


class Unauthorized(AppError):
    status = 401
    code = "unauthorized"
    message = "Sign in to continue."


class NotAllowed(AppError):
    status = 403
    code = "forbidden"
    message = "You are not allowed to do that."


class NotFound(AppError):
    status = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status = 409
    code = "conflict"
    message = "That conflicts with the current state."


class Invalid(AppError):
    status = 422
    code = "validation_error"
    message = "Some fields are not valid."


class TooLarge(AppError):
    status = 413
    code = "too_large"
    message = "That is too large."


class UnsupportedType(AppError):
    status = 415
    code = "unsupported_media_type"
    message = "That type of content is not accepted."


class RateLimited(AppError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; try again shortly."

    def __init__(self, retry_after: int, message: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after))
        super().__init__(
            message or f"Too many requests; try again in {self.retry_after} s.",
            headers={"Retry-After": str(self.retry_after)},
        )


def envelope(code: str, message: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        orjson.dumps(envelope(code, message, fields)),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or str(loc[0] if loc else "body")


def validation_fields(exc: RequestValidationError) -> tuple[str, str, dict[str, str]]:
    """Map FastAPI's validation errors to (code, message, fields)."""
    fields: dict[str, str] = {}
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            return "malformed_json", "The request body is not valid JSON.", {}
        msg = str(err.get("msg", "Invalid value."))
        msg = msg.removeprefix("Value error, ")
        fields.setdefault(_field_name(tuple(err.get("loc", ()))), msg)
    first = next(iter(fields.items()), None)
    message = f"{first[0]}: {first[1]}" if first else "Some fields are not valid."
    return "validation_error", message, fields


def install_error_handlers(app: FastAPI, html_handler: Any = None) -> None:
    """Register handlers; `html_handler(request, status, code, message, headers=)` (sync or
    async) may render pages, which keep the error's headers."""

    async def respond(
        request: Request, status: int, code: str, message: str, **kw: Any
    ) -> Response:
        metrics.errors.labels(code).inc()
        if html_handler is not None:
            page = html_handler(request, status, code, message, headers=kw.get("headers"))
            if inspect.isawaitable(page):
                page = await page
            if page is not None:
                if kw.get("headers"):  # Retry-After and the like hold for pages too
                    page.headers.update(kw["headers"])
                return page
        return error_response(status, code, message, **kw)

    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        _log_app_error(exc, request.method, request.url.path)
        return await respond(
            request, exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        code, message, fields = validation_fields(exc)
        status = 400 if code == "malformed_json" else 422
        return await respond(request, status, code, message, fields=fields or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404:
            message = "Not found."
        elif exc.status_code == 405:
            message = "That method is not allowed here."
        return await respond(request, exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return await respond(request, 500, *_UNEXPECTED)


_UNEXPECTED = ("internal_error", "Something went wrong on our side.")


def log_failure(logger: logging.Logger, what: str, *args: object) -> None:
    """In an `except` block: log what failed. A domain error answered with a 5xx (a database
    or a store out of reach, a transaction that gave way), or Redis out of reach, is something
    the server depends on failing, not a fault of its own: one line with its words, as a
    request's answer logs it. Anything else is logged with its traceback."""
    exc = sys.exc_info()[1]
    if (isinstance(exc, AppError) and exc.status >= 500) or _redis_out_of_reach(exc):
        logger.warning(f"{what}: %s", *args, exc, stacklevel=2)
    else:
        logger.exception(what, *args, stacklevel=2)


def _redis_out_of_reach(exc: BaseException | None) -> bool:
    """Redis could not be reached, or dropped the connection (a restart): what each of many
    background tasks (presence, say) meets at once, one line each rather than a traceback. A
    process that never loaded the Redis client cannot have met its errors."""
    found = sys.modules.get("redis.exceptions")
    return found is not None and isinstance(exc, (found.ConnectionError, found.TimeoutError))


def _log_app_error(exc: AppError, method: str, path: str) -> None:
    if exc.status >= 500:  # something the server depends on failed: say what, in the log
        log.warning("%s on %s %s: %s", exc.code, method, path, exc)


def app_error_response(exc: AppError, method: str, path: str) -> Response:
    """The JSON API's answer to a domain error, for a path served outside the routes (the
    lean send path): what the handlers above answer for it."""
    _log_app_error(exc, method, path)
    metrics.errors.labels(exc.code).inc()
    return error_response(exc.status, exc.code, exc.message, fields=exc.fields, headers=exc.headers)


def unexpected_error_response(method: str, path: str) -> Response:
    """Likewise for anything else: logged with its traceback, answered 500 in the envelope."""
    log.exception("unhandled error on %s %s", method, path)
    metrics.errors.labels(_UNEXPECTED[0]).inc()
    return error_response(500, *_UNEXPECTED)
