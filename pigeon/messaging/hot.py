"""The hottest routes, served lean: the send and the history page of a conversation,
`POST` and `GET /api/v1/conversations/{id}/messages`.

A send with a bearer token and a JSON body, and a history page with a bearer token and only
the route's own parameters (`limit`, `before_id`, `after_id`, as plain numbers in range), are
answered here, in front of the framework's
routing, dependency solving and the middleware meant for pages, by the same calls the routed
handlers make: `rt.authenticate`, then `MessageCreate` and `sending.send_message` in a unit of
work the request owns (committed before the answer), or `service.list_messages`; and they give
the same answer (the same serializer) or error envelope.
The contract and the OpenAPI document are the route's in `messaging.api`, which stays
registered and answers everything this does not take: a cookie-authenticated send (CSRF), a
body that is not declared JSON, one without a length or over the limit, and any body that
fails validation (replayed to the route, so its 400 or 422 is exactly the route's); a
history request with any other parameter, or one out of range.

Profiles of 16 concurrent senders put about half of the server's time per send in the
framework around the handler (the included routers' matching, the dependency graph, seven
middleware layers); this keeps the request log, the request id and the per-route metrics,
which sit outside it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.core.errors import AppError, app_error_response, unexpected_error_response
from pigeon.core.logs import AnsweredRoute
from pigeon.core.types import INT64_MAX
from pigeon.core.uow import owning
from pigeon.messaging import sending
from pigeon.messaging import service as messaging
from pigeon.messaging.api import JSON, as_json
from pigeon.messaging.context import Ctx
from pigeon.messaging.schemas import MessageCreate, MessageOut

log = logging.getLogger("pigeon.messaging")

MESSAGES_PATH = re.compile(r"/api/v1/conversations/([1-9][0-9]{0,18})/messages")
MESSAGES_TEMPLATE = "/api/v1/conversations/{conversation_id}/messages"
HISTORY_PARAMS = {"limit": (1, 200), "before_id": (1, INT64_MAX), "after_id": (1, INT64_MAX)}
PAGE = TypeAdapter(list[MessageOut])


MESSAGES_ROUTE = AnsweredRoute(MESSAGES_TEMPLATE)


class HotRoutes:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit
        self.state: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"] if scope["type"] == "http" else None
        found = MESSAGES_PATH.fullmatch(scope["path"]) if method in ("POST", "GET") else None
        if found is None or int(found.group(1)) > INT64_MAX:
            return await self.app(scope, receive, send)
        if method == "POST":
            return await self._send(scope, receive, send, int(found.group(1)))
        return await self._history(scope, receive, send, int(found.group(1)))

    async def _send(self, scope: Scope, receive: Receive, send: Send, conversation_id: int) -> None:
        token = _taken(scope, self.limit)
        if token is None:
            return await self.app(scope, receive, send)
        body = await _read(receive)
        try:
            create = MessageCreate.model_validate_json(body)
        except ValidationError:  # the route answers it, in its own words
            return await self.app(scope, _replay(body, receive), send)

        async def sending_it(ctx: Ctx) -> Response:
            message, created = await sending.send_created(ctx, conversation_id, create)
            return as_json(message, 201 if created else 200)

        await self._answer(scope, receive, send, conversation_id, token, sending_it)

    async def _history(
        self, scope: Scope, receive: Receive, send: Send, conversation_id: int
    ) -> None:
        token = _taken(scope, None)
        params = _history_params(scope["query_string"])
        if token is None or params is None:
            return await self.app(scope, receive, send)

        async def reading(ctx: Ctx) -> Response:
            page = await messaging.list_messages(ctx, conversation_id, **params)
            return Response(PAGE.dump_json(page), 200, media_type=JSON)

        await self._answer(scope, receive, send, conversation_id, token, reading)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        conversation_id: int,
        token: str,
        work: Callable[[Ctx], Awaitable[Response]],
    ) -> None:
        """Who asks, then `work` in a unit of work the request owns (committed before the
        answer), and its answer or the error's envelope, as the routes give them."""
        scope["route"] = MESSAGES_ROUTE  # what the request log and the metrics read
        scope["path_params"] = {"conversation_id": conversation_id}
        if self.state is None:
            self.state = scope["app"].state
        rt = self.state.runtime
        try:
            viewer = await rt.authenticate(token, None)
            ctx = Ctx(rt=rt, sends=self.state.sends, viewer=viewer, uow=rt.uow())
            async with owning(ctx.uow):
                response = await work(ctx)
        except AppError as exc:
            response = app_error_response(exc, scope["method"], scope["path"])
        except Exception:
            response = unexpected_error_response(scope["method"], scope["path"])
        await response(scope, receive, send)


def _taken(scope: Scope, limit: int | None) -> str | None:
    """The bearer token when this request is one the lean path answers exactly as the route
    would: one bearer token, and for a body (`limit` set) a JSON one with a declared length
    within the limit."""
    token: str | None = None
    json = sized = False
    authorizations = 0
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorizations += 1
            scheme, _, rest = value.decode("latin-1").strip().partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else None
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name == b"content-length":
            sized = value.isdigit() and (limit is None or int(value) <= limit)
        elif name == b"transfer-encoding":
            return None
    if authorizations != 1 or not token:
        return None
    if limit is not None and not (json and sized):
        return None
    return token


def _history_params(query: bytes) -> dict[str, int] | None:
    """`limit`, `before_id` and `after_id`, each at most once, as plain numbers in the route's
    bounds; None for anything else (the route answers it)."""
    params: dict[str, int] = {}
    for pair in query.split(b"&") if query else ():
        name, _, value = pair.decode("latin-1").partition("=")
        bounds = HISTORY_PARAMS.get(name)
        if bounds is None or name in params or not value.isascii() or not value.isdigit():
            return None
        number = int(value)
        if not bounds[0] <= number <= bounds[1]:
            return None
        params[name] = number
    return params


async def _read(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    given = False

    async def again() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again
