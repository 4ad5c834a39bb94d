"""Changing one's password: the current one first, the new one by the rules of sign-up, and
every other sign-in of the person ends while the one that asked goes on."""

from __future__ import annotations

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from pigeon.core.audit import AuditLog
from tests.support.people import PASSWORD

API = "/api/v1"
NEW = "a brand new passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sign_in(client: AsyncClient, login: str = "free", password: str = PASSWORD) -> dict:
    r = await client.post(f"{API}/auth/login", json={"login": login, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def change(client: AsyncClient, token: str, current: str, new: str):  # type: ignore[no-untyped-def]
    return await client.post(
        f"{API}/auth/password/change",
        json={"current_password": current, "new_password": new},
        headers=bearer(token),
    )


async def test_other_sign_ins_end_and_this_one_goes_on(client, people):
    here, phone, laptop = [await sign_in(client) for _ in range(3)]
    r = await change(client, here["access_token"], PASSWORD, NEW)
    assert r.status_code == 204, r.text

    assert (
        await client.get(f"{API}/auth/me", headers=bearer(here["access_token"]))
    ).status_code == 200
    for other in (phone, laptop):
        refused = await client.get(f"{API}/auth/me", headers=bearer(other["access_token"]))
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_token"
        again = await client.post(
            f"{API}/auth/refresh", json={"refresh_token": other["refresh_token"]}
        )
        assert again.status_code == 401
    kept = await client.post(f"{API}/auth/refresh", json={"refresh_token": here["refresh_token"]})
    assert kept.status_code == 200

    old = await client.post(f"{API}/auth/login", json={"login": "free", "password": PASSWORD})
    assert old.status_code == 401
    await sign_in(client, password=NEW)


async def test_a_wrong_current_password_is_refused_and_changes_nothing(client, people):
    here = await sign_in(client)
    other = await sign_in(client)
    r = await change(client, here["access_token"], "not my password", NEW)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "wrong_password"
    assert (
        await client.get(f"{API}/auth/me", headers=bearer(other["access_token"]))
    ).status_code == 200
    await sign_in(client)  # the old password still works


@pytest.mark.parametrize(
    ("new", "says"),
    [
        ("short", "at least 8"),
        ("password123", "most common"),
        ("free-and-easy", "username"),
        ("x" * 257, "at most 256"),
    ],
)
async def test_a_weak_new_password_is_refused_like_at_sign_up(client, people, new, says):
    here = await sign_in(client)
    r = await change(client, here["access_token"], PASSWORD, new)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert says in error["fields"]["new_password"]
    await sign_in(client)


async def test_bad_input_gets_the_envelope(client, people):
    here = await sign_in(client)
    for body in ({}, {"current_password": "", "new_password": NEW}, {"current_password": 5}):
        r = await client.post(
            f"{API}/auth/password/change", json=body, headers=bearer(here["access_token"])
        )
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await client.post(
        f"{API}/auth/password/change", json={"current_password": PASSWORD, "new_password": NEW}
    )
    assert r.status_code == 401


async def test_the_change_is_audited(app, client, people):
    here = await sign_in(client)
    assert (await change(client, here["access_token"], PASSWORD, NEW)).status_code == 204
    async with app.state.runtime.dbs.app.read() as session:
        rows = (
            await session.scalars(
                select(AuditLog).where(AuditLog.action == "user.password_changed")
            )
        ).all()
    assert [(r.actor_id, r.target_id) for r in rows] == [(people.free.id, people.free.id)]
    log = await client.get(
        f"{API}/admin/audit?action=user.password_changed", headers=people.admin.headers
    )
    assert log.status_code == 200 and len(log.json()) == 1
    assert "password" not in str(log.json()[0]["data"]).replace("password_changed", "")


class TestLimits:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(update={"rate_limits_enabled": True, "rate_login_per_minute": 3})

    async def test_wrong_passwords_count_against_the_sign_in_limit(self, client, people):
        here = await sign_in(client)  # one try of three
        for _ in range(2):
            r = await change(client, here["access_token"], "guess", NEW)
            assert r.status_code == 403
        r = await change(client, here["access_token"], "guess", NEW)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
