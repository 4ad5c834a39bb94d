"""The FastAPI application: routers, lifespan (databases, broker), error handlers, health."""

from __future__ import annotations

import datetime as dt
import functools
import gc
import hmac
import ipaddress
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from pigeon import __version__
from pigeon.accounts import api as accounts_api
from pigeon.accounts import invitations_api, notifications_api
from pigeon.admin import api as admin_api
from pigeon.admin import closing_api, email_api, moderation_api
from pigeon.auth import account_api
from pigeon.auth import api as auth_api
from pigeon.auth.principals import principal_from_token
from pigeon.auth.renewal import Renewal
from pigeon.core import events, metrics, migrate
from pigeon.core.clock import Clock
from pigeon.core.db import Databases
from pigeon.core.errors import error_response, install_error_handlers
from pigeon.core.events import BlocksChanged, PeopleChanged, SettingChanged, SignInsRevoked
from pigeon.core.logs import RequestLog
from pigeon.core.runtime import Runtime
from pigeon.core.switches import LAST_BACKUP
from pigeon.email import outbox
from pigeon.email.worker import Worker as EmailWorker
from pigeon.media.storage import open_store
from pigeon.messaging import api as messaging_api
from pigeon.messaging import media_api, requests_api, retention
from pigeon.messaging.hot import HotRoutes
from pigeon.messaging.push_fanout import PushFanout
from pigeon.messaging.send_tx import make_send_path
from pigeon.notifications.digest import DigestJob
from pigeon.push import api as push_api
from pigeon.push import keys as push_keys
from pigeon.realtime import api as realtime_api
from pigeon.realtime.hub import Hub
from pigeon.settings import Settings, get_settings
from pigeon.web import pages

log = logging.getLogger("pigeon")
MAX_BODY_BYTES = 1_000_000
# routes that take files: they stream the body to disk under the uploader's own limit
UPLOAD_PATHS = re.compile(r"/api/v1/media/upload|/messages/[0-9]+/send")


class BodyLimit:
    """413 (the envelope) for a body over the limit: at once for a declared Content-Length,
    and as soon as a chunked body passes it while it streams in. A multipart upload to one of
    the `streamed` paths is let through: those routes stream its files to disk and hold each
    to the uploader's own limit."""

    def __init__(self, app: ASGIApp, limit: int, streamed: re.Pattern[str]) -> None:
        self.app, self.limit, self.streamed = app, limit, streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._streamed(scope):
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                response = error_response(413, "too_large", "The request body is too large.")
                return await response(scope, receive, send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                # an HTTPException, so that body parsing passes it on as it is
                raise HTTPException(413, "The request body is too large.")
            return message

        return await self.app(scope, counted, send)

    def _streamed(self, scope: Scope) -> bool:
        if not self.streamed.fullmatch(scope["path"]):
            return False
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                return value.lower().startswith(b"multipart/form-data")
        return False


def control_listener(rt: Runtime) -> events.Listener:
    """What this process forgets when any process announces a change."""

    async def on_control(channel: str, payload: bytes) -> None:
        if channel != events.CONTROL_CHANNEL:
            return
        message = events.decode_control(payload)
        if isinstance(message, SettingChanged):
            rt.switches.forget(message.key)
        elif isinstance(message, PeopleChanged):
            rt.people.principals.forget(message.user_ids)
        elif isinstance(message, BlocksChanged):
            rt.people.edges.forget(message.user_ids)
        elif isinstance(message, SignInsRevoked):
            rt.signins_ended(message.family_ids)

    return on_control


def make_broker(settings: Settings) -> events.Broker:
    if settings.redis_url:
        from pigeon.realtime.redis_broker import RedisBroker

        return RedisBroker(settings.redis_url, prefix=settings.redis_prefix)
    return events.InProcessBroker()


@functools.cache
def shared_routes() -> tuple[BaseRoute, ...]:
    """The API's and the pages' routes, built once a process and shared by every app created
    in it. Building them (FastAPI reads every endpoint's parameters and builds their
    validators) is most of what creating an app costs, and they hold nothing of an app: a
    route finds the runtime, the settings and the hub on `request.app.state`. (Nor do they
    see an app's `dependency_overrides`, which Pigeon does not use.)"""
    api = APIRouter(prefix="/api/v1")
    for router in (
        messaging_api.router,  # first: the send path is matched most often
        media_api.router,
        requests_api.router,
        auth_api.router,
        account_api.router,
        accounts_api.router,
        notifications_api.router,
        invitations_api.router,
        admin_api.router,
        moderation_api.router,
        email_api.router,
        closing_api.router,
        push_api.router,
    ):
        api.include_router(router)
    root = APIRouter()
    root.include_router(api)
    root.include_router(realtime_api.router)
    for router in pages.ROUTERS:
        root.include_router(router, include_in_schema=False)
    return tuple(root.routes)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> FastAPI:
    """The app. `clock` lets tests (and several apps standing for several processes) share a
    clock they move instead of sleeping; by default each app has its own."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """Everything this app keeps between requests, started in order, stopped in reverse."""
        push_keys.check(settings)
        dbs = Databases(
            settings.app_db_url,
            settings.messaging_db_url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )
        try:
            for name, said in (await migrate.upgrade_databases(dbs)).items():
                log.info("%s database: %s", name, said)
        except migrate.SchemaTooNew as exc:
            log.error("cannot start: %s", exc)
            await dbs.dispose()
            raise
        broker = make_broker(settings)
        rt = Runtime(settings, dbs, broker, open_store(settings), clock)
        if rt.passwords.below_owasp_floor:
            log.warning("password hashing is set below OWASP's argon2id minimum (19 MiB, t=2)")

        async def authenticate(token: str | None, cookie: str | None) -> Any:
            return await principal_from_token(rt, token, cookie=cookie)

        rt.authenticate = authenticate
        broker.add_listener(control_listener(rt))
        await broker.start()
        await rt.stream.start()
        sends = make_send_path(dbs.messaging)
        hub = Hub(rt)
        renewal = Renewal(rt)  # what is believed of people in use, read afresh before it lapses
        schedule = retention.Schedule(rt)
        email_worker = EmailWorker(rt)  # only while an SMTP host is set
        digests = DigestJob(rt, hub.presence.is_online)  # likewise, and while its interval > 0
        pushes = PushFanout(rt, hub.is_connected)  # Web Push to whoever has no live connection
        app.state.runtime, app.state.sends, app.state.hub = rt, sends, hub
        app.state.renewal = renewal
        try:
            await hub.start()
            realtime_api.close_before_server_stops(hub)
            renewal.start()
            schedule.start()
            email_worker.start()
            digests.start()
            await pushes.prepare()
            pushes.start()
            # everything loaded so far lives as long as the process: keep the collector off it,
            # and collect young objects less often, so full collections do not stall delivery
            if settings.tune_gc:
                gc.collect()
                gc.freeze()
                gc.set_threshold(50_000, 20, 100)
            yield
        finally:
            await digests.stop()
            await pushes.stop()
            await email_worker.stop()
            await schedule.stop()
            await renewal.stop()
            await hub.stop()
            sends.close()
            await broker.stop()
            await rt.close()
            await dbs.dispose()

    app = FastAPI(
        title="Pigeon",
        version=__version__,
        description="Community messaging: direct and group conversations, delivered live.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES, streamed=UPLOAD_PATHS)

    app.router.routes.extend(shared_routes())
    realtime_api.install(app)
    pages.install(app)
    _ops_routes(app)
    # the send and the history page, answered in front of the routing and the page middleware
    # (same services, same answers); inside the request log, logged and measured like routes
    app.add_middleware(HotRoutes, limit=MAX_BODY_BYTES)
    app.add_middleware(realtime_api.LiveRoute)
    app.add_middleware(RequestLog, log_requests=settings.log_format == "json")
    if settings.trusted_proxies:
        # outermost: every route, page, WebSocket and rate limit sees the client's address
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def _is_local(request: Request, settings: Settings) -> bool:
    """A client on this machine that no proxy forwarded: a local proxy relays the world."""
    if any(name in request.headers for name in ("forwarded", "x-forwarded-for", "x-real-ip")):
        return False
    try:
        ip = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    proxies = (ipaddress.ip_network(entry, strict=False) for entry in settings.trusted_proxies)
    return ip.is_loopback and not any(ip in net for net in proxies)


def _may_read_metrics(request: Request, settings: Settings) -> bool:
    """Metrics are for the operator: loopback clients, and whoever holds the metrics token."""
    if settings.metrics_token:
        scheme, _, supplied = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            supplied.strip().encode(), settings.metrics_token.encode()
        ):
            return True
    return _is_local(request, settings)


async def _scrape_gauges(app: FastAPI, rt: Runtime) -> None:
    """What is read when /metrics is scraped rather than counted as it happens."""
    metrics.messaging_enabled.set(1 if await rt.switches.messaging_enabled() else 0)
    waiting = getattr(app.state.sends, "waiting", None)
    metrics.queue_depth.labels("writer").set(waiting() if waiting else 0)
    frames = sum(c.queue.qsize() for c in app.state.hub.connections())
    metrics.queue_depth.labels("connections").set(frames)
    async with rt.dbs.app.read() as session:
        counts = await outbox.waiting(session)
    metrics.queue_depth.labels("outbox_pending").set(counts["pending"])
    metrics.queue_depth.labels("outbox_dead").set(counts["dead"])
    for db in (rt.dbs.app, rt.dbs.messaging):
        pool: Any = db.write_engine.pool
        used = pool.checkedout() if hasattr(pool, "checkedout") else 0
        if db.read_engine is not db.write_engine:
            reader: Any = db.read_engine.pool
            used += reader.checkedout() if hasattr(reader, "checkedout") else 0
        metrics.db_connections.labels(db.name).set(used)
    row = await rt.switches.row(LAST_BACKUP)  # written by another process: read afresh
    at = row.value.get("at") if row is not None and isinstance(row.value, dict) else None
    metrics.last_backup.set(dt.datetime.fromisoformat(at).timestamp() if at else 0)


def _ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["ops"])
    async def readyz(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        dbs = rt.dbs
        checks: dict[str, bool] = {}
        for db in (dbs.app, dbs.messaging):
            if db.file_missing():  # never created (messaging never on): nothing to reach
                checks[db.name] = True
                continue
            try:
                async with db.read() as session:
                    await session.execute(text("SELECT 1"))
                checks[db.name] = True
            except Exception:
                checks[db.name] = False
        try:
            checks["broker"] = await rt.broker.ping()
        except Exception:
            checks["broker"] = False
        ok = all(checks.values())
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        rt: Runtime = request.app.state.runtime
        if not _may_read_metrics(request, rt.settings):
            return error_response(404, "not_found", "Not found.")
        await _scrape_gauges(request.app, rt)
        return Response(
            generate_latest(metrics.registry), media_type="text/plain; version=0.0.4; charset=utf-8"
        )
