"""The hottest route, served lean: `POST /api/v1/conversations/{id}/messages`.

A send with a bearer token and a JSON body is answered here, in front of the framework's
routing, dependency solving and the middleware meant for pages, by the same calls the routed
handler makes: `rt.authenticate`, `MessageCreate`, `sending.send_message` in a unit of work the
request owns (committed before the answer), and the same answer (`as_json`) or error envelope.
The contract and the OpenAPI document are the route's in `messaging.api`, which stays
registered and answers everything this does not take: a cookie-authenticated send (CSRF), a
body that is not declared JSON, one without a length or over the limit, and any body that
fails validation (replayed to the route, so its 400 or 422 is exactly the route's).

Profiles of 16 concurrent senders put about half of the server's time per send in the
framework around the handler (the included routers' matching, the dependency graph, seven
middleware layers); this keeps the request log, the request id and the per-route metrics,
which sit outside it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pigeon.core.errors import AppError, app_error_response, unexpected_error_response
from pigeon.core.types import INT64_MAX
from pigeon.core.uow import owning
from pigeon.messaging import sending
from pigeon.messaging.api import as_json
from pigeon.messaging.context import Ctx
from pigeon.messaging.schemas import MessageCreate

log = logging.getLogger("pigeon.messaging")

SEND_PATH = re.compile(r"/api/v1/conversations/([1-9][0-9]{0,18})/messages")
SEND_TEMPLATE = "/api/v1/conversations/{conversation_id}/messages"


class HotRoute:
    """What the request log and the metrics read as the matched route (`scope["route"]`)."""

    def __init__(self, path: str) -> None:
        self.path = path


SEND_ROUTE = HotRoute(SEND_TEMPLATE)


class HotSend:
    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app, self.limit = app, limit
        self.state: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        found = SEND_PATH.fullmatch(scope["path"])
        token = _taken(scope, self.limit) if found else None
        if found is None or token is None:
            return await self.app(scope, receive, send)
        conversation_id = int(found.group(1))
        if conversation_id > INT64_MAX:
            return await self.app(scope, receive, send)
        body = await _read(receive)
        try:
            create = MessageCreate.model_validate_json(body)
        except ValidationError:  # the route answers it, in its own words
            return await self.app(scope, _replay(body, receive), send)
        scope["route"] = SEND_ROUTE
        scope["path_params"] = {"conversation_id": conversation_id}
        state = self.state or scope["app"].state
        self.state = state
        rt = state.runtime
        try:
            viewer = await rt.authenticate(token, None)
            ctx = Ctx(rt=rt, sends=state.sends, viewer=viewer, uow=rt.uow())
            async with owning(ctx.uow):
                message, created = await sending.send_message(
                    ctx,
                    conversation_id,
                    body=create.body,
                    client_msg_id=create.client_msg_id,
                    reply_to_id=create.reply_to_id,
                    attachment_ids=create.attachment_ids,
                )
            response = as_json(message, 201 if created else 200)
        except AppError as exc:
            response = app_error_response(exc, "POST", scope["path"])
        except Exception:
            response = unexpected_error_response("POST", scope["path"])
        await response(scope, receive, send)


def _taken(scope: Scope, limit: int) -> str | None:
    """The bearer token when this request is one the lean path answers exactly as the route
    would: one bearer token, a JSON body with a declared length within the limit."""
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
            sized = value.isdigit() and int(value) <= limit
        elif name == b"transfer-encoding":
            return None
    if authorizations != 1 or not token or not json or not sized:
        return None
    return token


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
