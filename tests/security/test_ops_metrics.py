"""/metrics is for the operator: loopback clients that no proxy forwarded, and whoever holds
PIGEON_METRICS_TOKEN. Everyone else gets the 404 envelope, as for a page that is not there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

OUTSIDE = ("203.0.113.9", 40000)
TOKEN = "a-metrics-token-for-the-scraper"


@asynccontextmanager
async def from_address(app: FastAPI, address: tuple[str, int]) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=address)
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def served(r: Response) -> None:
    assert r.status_code == 200, r.text
    assert "pigeon_live_connections" in r.text


def hidden(r: Response) -> None:
    assert r.status_code == 404, r.text
    assert r.json() == {"error": {"code": "not_found", "message": "Not found."}}
    assert "pigeon_" not in r.text


async def test_metrics_answer_only_this_machine(app):
    async with from_address(app, ("127.0.0.1", 40000)) as local:
        served(await local.get("/metrics"))
    async with from_address(app, ("::1", 40000)) as local:
        served(await local.get("/metrics"))
    async with from_address(app, OUTSIDE) as outside:
        hidden(await outside.get("/metrics"))
        hidden(await outside.get("/metrics", headers={"Authorization": "Bearer guess"}))
    # a proxy on this machine relays the world: what it forwards is not local
    async with from_address(app, ("127.0.0.1", 40000)) as proxied:
        hidden(await proxied.get("/metrics", headers={"X-Forwarded-For": OUTSIDE[0]}))
        hidden(await proxied.get("/metrics", headers={"Forwarded": f"for={OUTSIDE[0]}"}))


async def test_the_metrics_token_lets_a_remote_scraper_in(app):
    app.state.runtime.settings.metrics_token = TOKEN
    async with from_address(app, OUTSIDE) as outside:
        served(await outside.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}))
        hidden(await outside.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"}))
        hidden(await outside.get("/metrics", headers={"Authorization": TOKEN}))
        hidden(await outside.get("/metrics"))
    async with from_address(app, ("127.0.0.1", 40000)) as local:
        served(await local.get("/metrics"))
