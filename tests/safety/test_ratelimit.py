"""Rate limits through the API: sends, sign-ins, sign-ups; in-process and in Redis."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import REDIS_URL
from tests.safety.conftest import travel
from tests.support.people import dm, send
from tests.web.support import post_form, signed_in

API = "/api/v1"


@pytest.fixture(params=["memory", "redis"])
def settings(request, settings):  # type: ignore[no-untyped-def]
    """Limits on, small enough to reach, in this process or in Redis."""
    values = {
        "rate_limits_enabled": True,
        "rate_send_per_minute": 6,
        "rate_send_burst": 3,
        "rate_login_per_minute": 4,
        "rate_login_per_address_per_minute": 6,
        "rate_register_per_hour": 2,
        "rate_organise_per_minute": 8,  # a burst of 2
        "rate_invite_per_hour": 10,  # a burst of 2
        "rate_settings_per_minute": 6,  # a burst of 2
    }
    if request.param == "redis":
        if not REDIS_URL:
            pytest.skip("PIGEON_TEST_REDIS_URL is not set")
        values |= {"redis_url": REDIS_URL, "redis_prefix": f"pigeon-test-{uuid.uuid4().hex}"}
    return settings.model_copy(update=values)


def assert_limited(r, code_hint: str = "") -> int:  # type: ignore[no-untyped-def]
    assert r.status_code == 429, r.text
    assert r.json()["error"]["code"] == "rate_limited"
    assert code_hint in r.json()["error"]["message"]
    retry = int(r.headers["Retry-After"])
    assert retry >= 1
    return retry


async def test_sends_allow_a_burst_then_the_steady_rate(app, client, people):
    conv = await dm(client, people.priv, people.free)
    for i in range(3):
        assert (await send(client, people.priv, conv["id"], f"m{i}")).status_code == 201
    retry = assert_limited(await send(client, people.priv, conv["id"], "too fast"), "sending")
    assert retry <= 10
    # someone else is not slowed down by it
    assert (await send(client, people.free, conv["id"], "my turn")).status_code == 201

    travel(app, people, seconds=retry)
    assert (await send(client, people.priv, conv["id"], "again")).status_code == 201
    assert_limited(await send(client, people.priv, conv["id"], "and again"))
    travel(app, people, seconds=30)  # 6 a minute: three more have trickled in
    for i in range(3):
        assert (await send(client, people.priv, conv["id"], f"n{i}")).status_code == 201
    assert_limited(await send(client, people.priv, conv["id"], "no"))


async def test_sign_ins_are_limited_per_account_and_per_address(app, client, people):
    for _ in range(4):
        r = await client.post(f"{API}/auth/login", json={"login": "free", "password": "wrong"})
        assert r.status_code == 401
    # the account is held, even with the right password, and by email too
    r = await client.post(
        f"{API}/auth/login", json={"login": "Free@Example.com", "password": "correct horse battery"}
    )
    assert_limited(r, "account")
    # another account from the same address: the address allows six a minute in all
    r = await client.post(
        f"{API}/auth/login", json={"login": "priv", "password": "correct horse battery"}
    )
    assert r.status_code == 200
    r = await client.post(f"{API}/auth/login", json={"login": "plus", "password": "nope"})
    assert_limited(r, "address")

    travel(app, people, minutes=1)
    r = await client.post(
        f"{API}/auth/login", json={"login": "free", "password": "correct horse battery"}
    )
    assert r.status_code == 200


async def test_registrations_are_limited_per_address(app, client, people):
    def body(n: int) -> dict[str, str]:
        return {
            "email": f"new{n}@example.com",
            "username": f"new{n}",
            "password": "a long enough password",
        }

    for n in range(2):
        assert (await client.post(f"{API}/auth/register", json=body(n))).status_code == 201
    retry = assert_limited(await client.post(f"{API}/auth/register", json=body(2)), "accounts")
    assert 60 < retry <= 1800
    travel(app, people, seconds=retry)
    assert (await client.post(f"{API}/auth/register", json=body(2))).status_code == 201


async def test_one_setting_turns_every_limit_off(settings, tmp_path):  # type: ignore[no-untyped-def]
    from httpx import ASGITransport, AsyncClient

    from pigeon.app import create_app
    from tests.support.people import make_people

    application = create_app(settings.model_copy(update={"rate_limits_enabled": False}))
    async with application.router.lifespan_context(application):
        transport = ASGITransport(app=application)
        async with AsyncClient(transport=transport, base_url="http://testserver") as c:
            people = await make_people(application, c)
            conv = await dm(c, people.priv, people.free)
            for i in range(12):
                assert (await send(c, people.priv, conv["id"], f"m{i}")).status_code == 201
            for _ in range(8):
                r = await c.post(f"{API}/auth/login", json={"login": "free", "password": "x"})
                assert r.status_code == 401


async def test_keeping_conversations_is_limited_per_person(app, client, people):
    conv = await dm(client, people.priv, people.free)
    for muted in (True, False):
        r = await client.patch(
            f"{API}/conversations/{conv['id']}", json={"muted": muted}, headers=people.priv.headers
        )
        assert r.status_code == 200
    r = await client.patch(
        f"{API}/conversations/{conv['id']}", json={"pinned": True}, headers=people.priv.headers
    )
    assert_limited(r, "changing your conversations")
    r = await client.delete(f"{API}/conversations/{conv['id']}", headers=people.priv.headers)
    assert_limited(r, "changing your conversations")


async def test_changing_ones_notification_settings_and_devices_is_limited(app, client, people):
    """The digest switch, the push switch and devices share one budget per person: each is a
    write, and nobody needs to flip them many times a minute."""
    priv = people.priv.headers
    r = await client.patch(f"{API}/me/notifications", json={"email_digest": False}, headers=priv)
    assert r.status_code == 200
    r = await client.put(f"{API}/push/settings", json={"push": False}, headers=priv)
    assert r.status_code == 200
    r = await client.put(f"{API}/push/settings", json={"push": True}, headers=priv)
    assert_limited(r, "changing your settings")
    r = await client.patch(f"{API}/me/notifications", json={"email_digest": True}, headers=priv)
    assert_limited(r, "changing your settings")
    r = await client.request(
        "DELETE",
        f"{API}/push/subscriptions",
        json={"endpoint": "https://push.example.org/x"},
        headers=priv,
    )
    assert_limited(r, "changing your settings")
    # someone else's budget is their own
    r = await client.put(f"{API}/push/settings", json={"push": False}, headers=people.plus.headers)
    assert r.status_code == 200


async def test_saving_ones_own_profile_is_limited_through_the_api_and_the_pages(
    app, client, people
):  # type: ignore[no-untyped-def]
    """A profile or privacy save is a write that every process hears of: it takes from the
    budget of one's other settings, whichever way it comes. An admin changing someone else's
    standing does not."""
    free = people.free
    r = await client.put(f"{API}/users/{free.id}", json={"bio": "first"}, headers=free.headers)
    assert r.status_code == 200
    r = await client.patch(
        f"{API}/me/notifications", json={"email_digest": False}, headers=free.headers
    )
    assert r.status_code == 200
    r = await client.put(f"{API}/users/{free.id}", json={"bio": "third"}, headers=free.headers)
    assert_limited(r, "changing your settings")
    async with signed_in(app, "free") as c:
        r = await post_form(c, "/u/free", "/u/free/privacy", {"read_receipts": "1"})
        assert r.status_code == 429
        retry = int(r.headers["retry-after"])  # what is left of the 10 s window, in real time
        assert 1 <= retry <= 10
        assert "Slow down a little" in r.text and f"Try again in {retry} second" in r.text
        r = await post_form(c, "/u/free", "/u/free/edit", {"display_name": "Free", "bio": "x"})
        assert r.status_code == 429 and "changing your settings too fast" in r.text
        assert int(r.headers["retry-after"]) >= 1
        assert 'name="bio"' in r.text  # the form again, to send once the wait is over
    me = (await client.get(f"{API}/users/{free.id}", headers=free.headers)).json()
    assert me["bio"] == "first" and me["read_receipts"] is True  # nothing refused was written
    for tier in ("privileged", "free", "privileged"):
        r = await client.patch(
            f"{API}/admin/users/{people.plus.id}", json={"tier": tier}, headers=people.admin.headers
        )
        assert r.status_code == 200, r.text


async def test_invitations_are_limited_per_inviter(app, client, people):
    async def invite(who, n):  # type: ignore[no-untyped-def]
        return await client.post(
            f"{API}/invitations/send", json={"email": f"guest{n}@example.com"}, headers=who.headers
        )

    for n in range(2):
        assert (await invite(people.admin, n)).status_code == 201
    assert_limited(await invite(people.admin, 2), "invitations")
    assert (await invite(people.manager, 3)).status_code == 201  # another inviter's own budget


async def test_a_burst_of_checks_waits_for_redis_connections_instead_of_failing() -> None:
    """Hundreds of rate-limit checks at once (a crowd sending together) take turns on the
    process's Redis connections: none fails for want of one."""
    import asyncio

    from pigeon.core import redis_pool
    from pigeon.core.ratelimit import RedisStore, Rule

    if not REDIS_URL:
        pytest.skip("PIGEON_TEST_REDIS_URL is not set")
    store = RedisStore(REDIS_URL, f"pigeon-test-{uuid.uuid4().hex}")
    rule = Rule("burst", rate=1000, period=60, burst=1000)
    try:
        waits = await asyncio.gather(
            *(
                store.take(f"person-{i}", rule, 1_000.0)
                for i in range(redis_pool.MAX_CONNECTIONS * 4)
            )
        )
    finally:
        await store.close()
    assert waits == [0.0] * (redis_pool.MAX_CONNECTIONS * 4)
