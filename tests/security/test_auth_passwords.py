"""A new password may not be one of the commonest, nor the person's own name, wherever it is
set: the API, the sign-up page, the CLI, and a password change in the service."""

from __future__ import annotations

import html

import pytest
from typer.testing import CliRunner

from pigeon.accounts import service as accounts
from pigeon.cli import app as cli
from pigeon.core.errors import Invalid
from pigeon.settings import get_settings
from tests.web.support import browser, csrf_of

API = "/api/v1"
COMMON = "This is one of the most common passwords"


async def register(client, password: str, username: str = "reader", email: str | None = None):  # type: ignore[no-untyped-def]
    body = {
        "email": email or f"{username}@example.com",
        "username": username,
        "password": password,
    }
    return await client.post(f"{API}/auth/register", json=body)


def refused(r, words: str) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert words in error["fields"]["password"], error
    assert words in error["message"]


@pytest.mark.parametrize("password", ["password1", "iloveyou", "Sunshine", "QWERTY123"])
async def test_the_commonest_passwords_are_refused(client, password):
    refused(await register(client, password), COMMON)


async def test_a_password_made_of_ones_own_name_is_refused(client):
    refused(await register(client, "reader reader"), "username")
    refused(await register(client, "the-reader-2024"), "username")
    r = await register(client, "Maria.Lopez", username="mlo", email="maria.lopez@example.com")
    refused(r, "email")
    r = await register(client, "maria.lopez!!", username="mlo", email="maria.lopez@example.com")
    refused(r, "email")


async def test_a_good_password_is_still_welcome(client):
    r = await register(client, "correct horse battery staple grey")
    assert r.status_code == 201, r.text
    r = await register(client, "bookshelf in the attic", username="bo", email="bo@example.com")
    assert r.status_code == 422  # a 2-letter username: too short, the password is not the issue
    assert "password" not in r.json()["error"]["fields"]


async def test_the_sign_up_page_says_why(app):
    async with browser(app) as c:
        page = await c.get("/register")
        r = await c.post(
            "/register",
            data={
                "email": "new@example.com",
                "username": "newbie",
                "password": "baseball1",
                "csrf_token": csrf_of(page),
            },
        )
    assert r.status_code == 400
    assert COMMON in html.unescape(r.text)


async def test_changing_a_password_follows_the_same_rule(app, client, people):
    rt = app.state.runtime
    async with rt.dbs.app.read() as session:
        user = await accounts.get_user(session, people.free.id)
    for weak in ("football", "free-as-a-bird"):
        async with rt.uow_scope() as uow:
            with pytest.raises(Invalid) as refusal:
                await accounts.set_password(uow.app, rt.passwords, user, weak)
        assert refusal.value.fields and "password" in refusal.value.fields
    async with rt.uow_scope() as uow:
        await accounts.set_password(uow.app, rt.passwords, user, "a new and better one")
    r = await client.post(
        f"{API}/auth/login", json={"login": "free", "password": "a new and better one"}
    )
    assert r.status_code == 200


def test_the_first_admin_cannot_be_given_a_common_password(tmp_path, monkeypatch):
    monkeypatch.setenv("PIGEON_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PIGEON_PASSWORD_HASH_TIME_COST", "1")
    monkeypatch.setenv("PIGEON_PASSWORD_HASH_MEMORY_KIB", "64")
    for var in ("PIGEON_DATABASE_URL", "PIGEON_MESSAGING_DATABASE_URL", "PIGEON_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["admin", "create", "--email", "boss@example.com", "--username", "boss"]
        r = runner.invoke(cli, [*args, "--password", "trustno1"])
        assert r.exit_code == 1 and COMMON in r.output, r.output
        r = runner.invoke(cli, [*args, "--password", "bossbossboss"])
        assert r.exit_code == 1 and "username" in r.output, r.output
        r = runner.invoke(cli, [*args, "--password", "a fine password"])
        assert r.exit_code == 0, r.output
    finally:
        get_settings.cache_clear()
