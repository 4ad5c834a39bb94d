"""Wrong passwords from one address do not lock the owner out from theirs: sign-ins are
limited per account *and* address, with a slower account-wide backstop for guesses spread over
many addresses. The address is the peer's, unless the peer is a proxy named in
PIGEON_TRUSTED_PROXIES (L6, sign-in part)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from pigeon.app import create_app
from tests.conftest import REDIS_URL
from tests.support.people import PASSWORD, make_people
from tests.support.serve import pigeon_serve

API = "/api/v1"
ATTACKER, OWNER = "198.51.100.7", "203.0.113.20"


@pytest.fixture(params=["memory", "redis"])
def settings(request, settings):  # type: ignore[no-untyped-def]
    values = {
        "rate_limits_enabled": True,
        "rate_login_per_minute": 3,  # per account from one address
        "rate_login_per_address_per_minute": 100,
        "rate_login_per_account_per_hour": 8,
    }
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("PIGEON_TEST_REDIS_URL is not set")
        values |= {"redis_url": REDIS_URL, "redis_prefix": f"pigeon-test-{uuid.uuid4().hex}"}
    return settings.model_copy(update=values)


@asynccontextmanager
async def from_address(app: FastAPI, host: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=(host, 40000))
    async with AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def sign_in(c: AsyncClient, password: str, **headers: str) -> httpx.Response:
    return await c.post(
        f"{API}/auth/login", json={"login": "free", "password": password}, headers=headers
    )


def limited(r: httpx.Response, words: str) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert words in r.json()["error"]["message"]
    assert int(r.headers["Retry-After"]) >= 1


async def test_guesses_from_one_address_do_not_lock_the_owner_out(app, people):
    async with from_address(app, ATTACKER) as attacker, from_address(app, OWNER) as owner:
        for _ in range(3):
            assert (await sign_in(attacker, "guess")).status_code == 401
        limited(await sign_in(attacker, PASSWORD), "this account from your address")
        r = await sign_in(owner, PASSWORD)
        assert r.status_code == 200, r.text


async def test_guesses_spread_over_many_addresses_meet_the_account_backstop(app, people):
    for n in range(8):
        async with from_address(app, f"192.0.2.{n + 1}") as somewhere:
            assert (await sign_in(somewhere, "guess")).status_code == 401
    async with from_address(app, "192.0.2.200") as elsewhere:
        limited(await sign_in(elsewhere, "guess"), "this account")


async def test_forwarded_addresses_are_ignored_unless_the_proxy_is_trusted(app, people):
    """By default a client cannot pick its address: X-Forwarded-For is not believed."""
    async with from_address(app, ATTACKER) as attacker:
        for n in range(3):
            r = await sign_in(attacker, "guess", **{"X-Forwarded-For": f"192.0.2.{n}"})
            assert r.status_code == 401
        r = await sign_in(attacker, "guess", **{"X-Forwarded-For": "192.0.2.99"})
        limited(r, "from your address")


async def test_a_trusted_proxy_gives_each_client_its_own_address(settings):  # type: ignore[no-untyped-def]
    app = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.0/8"]}))
    async with app.router.lifespan_context(app), from_address(app, "10.1.2.3") as proxy:
        await make_people(app, proxy)
        # the proxy appends the address it saw; what the client claimed before it is not used
        attacker = {"X-Forwarded-For": f"{OWNER}, {ATTACKER}"}
        for _ in range(3):
            assert (await sign_in(proxy, "guess", **attacker)).status_code == 401
        limited(await sign_in(proxy, PASSWORD, **attacker), "from your address")
        r = await sign_in(proxy, PASSWORD, **{"X-Forwarded-For": OWNER})
        assert r.status_code == 200, r.text


def test_the_server_believes_no_forwarded_address_by_default(tmp_path):
    """`pigeon serve` as shipped: a client on this machine (where a default proxy setting would
    trust it) cannot dodge the per-address limit with X-Forwarded-For."""
    env = {
        "PIGEON_PASSWORD_HASH_TIME_COST": "1",
        "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
        "PIGEON_RATE_LOGIN_PER_ADDRESS_PER_MINUTE": "3",
        "PIGEON_LOG_LEVEL": "warning",
    }
    with pigeon_serve(tmp_path / "data", env) as base:
        codes = [
            httpx.post(
                f"{base}{API}/auth/login",
                json={"login": f"nobody{n}", "password": "guess"},
                headers={"X-Forwarded-For": f"192.0.2.{n}"},
            ).status_code
            for n in range(4)
        ]
        assert codes == [401, 401, 401, 429]
