"""An access token ends with its sign-in: after signing out, after a reused refresh token
revokes the family, in every process, not only when it expires (L1)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from pigeon.app import create_app
from pigeon.core.runtime import REMEMBER
from tests.conftest import REDIS_URL
from tests.realtime import conftest as realtime
from tests.support.brokers import cut_subscription
from tests.support.people import PASSWORD

API = "/api/v1"
server = realtime.server  # the fixture: the test's app on a real socket, for WebSockets


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_up(client: AsyncClient, name: str = "reader") -> dict[str, str]:
    r = await client.post(
        f"{API}/auth/register",
        json={"email": f"{name}@example.com", "username": name, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def assert_refused(client: AsyncClient, access: str) -> None:
    for path in ("/auth/me", "/contacts", "/blocks"):
        r = await client.get(f"{API}{path}", headers=bearer(access))
        assert r.status_code == 401, (path, r.text)
        assert r.json()["error"]["code"] == "invalid_token"


async def test_signing_out_ends_the_access_token_at_once(client):
    tokens = await sign_up(client)
    other = (
        await client.post(f"{API}/auth/login", json={"login": "reader", "password": PASSWORD})
    ).json()
    assert (await client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))).is_success
    r = await client.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 204
    await assert_refused(client, tokens["access_token"])
    # the same person's other sign-in (another device) goes on
    r = await client.get(f"{API}/auth/me", headers=bearer(other["access_token"]))
    assert r.status_code == 200


async def test_a_reused_refresh_token_ends_every_access_token_of_its_sign_in(client, clock):
    tokens = await sign_up(client)
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    rotated = r.json()
    clock.advance(dt.timedelta(seconds=31))  # past the grace window for racing refreshes
    r = await client.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "refresh_token_reused"
    # both access tokens are well within their 15 minutes, and both are finished
    await assert_refused(client, tokens["access_token"])
    await assert_refused(client, rotated["access_token"])


async def test_a_signed_out_token_cannot_open_a_live_connection(app, client, people, server):
    r = await client.post(f"{API}/auth/login", json={"login": "free", "password": PASSWORD})
    tokens = r.json()
    live = await server.connect(token=tokens["access_token"])  # says hello: accepted
    await live.close()
    await client.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    live = await server.connect(token=tokens["access_token"], hello=False)
    assert await live.closed() == (4401, "invalid_token")


# --- several processes: two apps on the same databases ---


@asynccontextmanager
async def running(settings, clock=None) -> AsyncIterator[tuple[FastAPI, AsyncClient]]:  # type: ignore[no-untyped-def]
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield app, c


def across_redis(settings):  # type: ignore[no-untyped-def]
    """The test's settings for processes linked by Redis (a prefix of their own)."""
    return settings.model_copy(
        update={"redis_url": REDIS_URL, "redis_prefix": f"pigeon-test-{uuid.uuid4().hex}"}
    )


async def signed_in_on_both(
    one: AsyncClient, two: AsyncClient
) -> tuple[dict[str, str], dict[str, str]]:
    """A member signed up through `one` whose token `two` has read as live (and remembers):
    the tokens, and the bearer header."""
    tokens = await sign_up(one)
    me = bearer(tokens["access_token"])
    assert (await two.get(f"{API}/auth/me", headers=me)).status_code == 200
    return tokens, me


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="PIGEON_TEST_REDIS_URL is not set")
async def test_signing_out_reaches_the_other_processes_at_once(settings):
    shared = across_redis(settings)
    async with running(shared) as (_, one), running(shared) as (_, two):
        tokens, me = await signed_in_on_both(one, two)
        r = await one.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 204
        deadline = time.monotonic() + 2
        while (await two.get(f"{API}/auth/me", headers=me)).status_code == 200:
            assert time.monotonic() < deadline, "the other process still accepts the token"
            await asyncio.sleep(0.02)
        await assert_refused(two, tokens["access_token"])


async def test_a_process_that_missed_the_announcement_learns_within_seconds(settings, clock):
    """No broker between the processes (a CLI revocation, a lost message): the other process
    believes what it read for at most REMEMBER seconds, then reads again."""
    async with running(settings, clock) as (_, one), running(settings, clock) as (_, two):
        tokens, me = await signed_in_on_both(one, two)
        r = await one.post(f"{API}/auth/logout", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 204
        await assert_refused(one, tokens["access_token"])  # where it was announced: at once
        clock.advance(dt.timedelta(seconds=REMEMBER + 1))
        await assert_refused(two, tokens["access_token"])


@pytest.mark.redis
@pytest.mark.skipif(not REDIS_URL, reason="PIGEON_TEST_REDIS_URL is not set")
async def test_a_process_whose_subscription_dropped_reads_sign_ins_afresh(settings):
    """Across Redis a process believes what it read for longer, since every change is
    announced; an announcement can be lost only while its subscription is down, so once the
    subscription is back it forgets every sign-in and person it remembered."""
    from sqlalchemy import update

    from pigeon.auth.models import RefreshToken

    shared = across_redis(settings)
    async with running(shared) as (first, one), running(shared) as (second, two):
        tokens, me = await signed_in_on_both(one, two)
        rt = first.state.runtime
        async with rt.dbs.app.write() as session:  # revoked, and the announcement lost
            await session.execute(update(RefreshToken).values(revoked_at=rt.clock.now()))
        assert (await two.get(f"{API}/auth/me", headers=me)).status_code == 200  # still believed
        await cut_subscription(second.state.runtime.broker)
        await assert_refused(two, tokens["access_token"])


async def test_a_revocation_nobody_announced_is_found_by_the_renewal(
    app, client, clock, renewal_by_hand
):
    """A sign-in in use is read afresh before its belief lapses (`auth.renewal`): a sign-out
    whose announcement was lost ends its token then, and the others go on."""
    from sqlalchemy import update

    from pigeon.auth import renewal
    from pigeon.auth.models import RefreshToken

    rt = app.state.runtime
    mine, theirs = await sign_up(client), await sign_up(client, "other")
    for tokens in (mine, theirs):
        assert (
            await client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
        ).is_success
    async with rt.dbs.app.write() as session:  # signed out elsewhere; the announcement lost
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.user_id == mine["user"]["id"])
            .values(revoked_at=clock.now())
        )
    clock.advance(dt.timedelta(seconds=rt.people.seconds * 0.8))
    for tokens in (mine, theirs):  # still believed; asked about in its last quarter: due
        assert (
            await client.get(f"{API}/auth/me", headers=bearer(tokens["access_token"]))
        ).is_success
    await renewal.renew(rt)
    await assert_refused(client, mine["access_token"])
    assert (await client.get(f"{API}/auth/me", headers=bearer(theirs["access_token"]))).is_success
