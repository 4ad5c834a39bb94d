"""The account's email through the API, against a real SMTP server: each test reads the email
the server received and follows the link in its text, as a person would."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import time

import pytest
from httpx import AsyncClient
from sqlalchemy import select

from pigeon.admin.audit_text import Names, describe
from pigeon.core.audit import AuditLog
from pigeon.settings import Settings
from tests.support.mail import LINK, inbox, link_in, text_of, with_email
from tests.support.people import PASSWORD
from tests.support.smtp import SmtpServer

API = "/api/v1"
NEW = "a brand new passphrase"


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return with_email(settings, smtp)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: AsyncClient, name: str = "newbie") -> dict:
    r = await client.post(
        f"{API}/auth/register",
        json={"email": f"{name}@example.net", "username": name, "password": PASSWORD},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def sign_in(client: AsyncClient, login: str, password: str = PASSWORD) -> dict:
    r = await client.post(f"{API}/auth/login", json={"login": login, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def me(client: AsyncClient, token: str) -> dict:
    r = await client.get(f"{API}/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


async def audited(app, action: str) -> list[AuditLog]:
    async with app.state.runtime.dbs.app.read() as session:
        return list(await session.scalars(select(AuditLog).where(AuditLog.action == action)))


# --- verification ---


async def test_sign_up_sends_a_link_that_verifies_the_address_once(app, client, smtp) -> None:
    signed = await register(client)
    assert signed["user"]["email_verified"] is False
    assert (await me(client, signed["access_token"]))["email_verified"] is False

    [mail] = await inbox(app, smtp, "newbie@example.net")
    assert "Verify your email address" in str(mail["Subject"])
    path, token = link_in(mail)
    assert path == "/verify-email"

    r = await client.post(f"{API}/auth/email/verify", json={"token": token})
    assert r.status_code == 200, r.text
    assert r.json() == {"email": "newbie@example.net", "email_verified": True}
    assert (await me(client, signed["access_token"]))["email_verified"] is True
    again = await client.post(f"{API}/auth/email/verify", json={"token": token})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_link"
    assert [a.target_id for a in await audited(app, "user.email_verified")] == [
        signed["user"]["id"]
    ]


async def test_a_resent_link_replaces_the_first_and_a_verified_address_needs_none(
    app, client, smtp
) -> None:
    signed = await register(client)
    [first] = await inbox(app, smtp, "newbie@example.net")
    r = await client.post(f"{API}/auth/email/verify/resend", headers=bearer(signed["access_token"]))
    assert r.status_code == 202 and r.json() == {"sent_to": "newbie@example.net"}
    _, second = await inbox(app, smtp, "newbie@example.net")

    stale = await client.post(f"{API}/auth/email/verify", json={"token": link_in(first)[1]})
    assert stale.status_code == 400
    ok = await client.post(f"{API}/auth/email/verify", json={"token": link_in(second)[1]})
    assert ok.status_code == 200
    done = await client.post(
        f"{API}/auth/email/verify/resend", headers=bearer(signed["access_token"])
    )
    assert done.status_code == 409 and done.json()["error"]["code"] == "already_verified"
    assert (await client.post(f"{API}/auth/email/verify/resend")).status_code == 401


async def test_a_verification_link_expires(app, client, smtp, clock) -> None:
    await register(client)
    [mail] = await inbox(app, smtp, "newbie@example.net")
    clock.advance(dt.timedelta(hours=48, minutes=1))
    r = await client.post(f"{API}/auth/email/verify", json={"token": link_in(mail)[1]})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_link"


async def test_two_uses_of_one_link_at_once_verify_once(app, client, smtp) -> None:
    await register(client)
    [mail] = await inbox(app, smtp, "newbie@example.net")
    token = link_in(mail)[1]
    answers = await asyncio.gather(
        *(client.post(f"{API}/auth/email/verify", json={"token": token}) for _ in range(4))
    )
    assert sorted(r.status_code for r in answers) == [200, 400, 400, 400]


async def test_bad_tokens_get_the_envelope(client) -> None:
    for body in ({}, {"token": ""}, {"token": "x" * 201}, {"token": "has spaces"}):
        r = await client.post(f"{API}/auth/email/verify", json=body)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    r = await client.post(f"{API}/auth/email/confirm", json={"token": "never-issued"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_link"


# --- forgotten password ---


async def forgot(client: AsyncClient, email: str):  # type: ignore[no-untyped-def]
    return await client.post(f"{API}/auth/password/forgot", json={"email": email})


async def test_forgot_answers_the_same_for_known_and_unknown_addresses(app, client, people, smtp):
    known = await forgot(client, "free@example.com")
    unknown = await forgot(client, "nobody@example.com")
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers.get("content-length") == unknown.headers.get("content-length")

    [reset] = await inbox(app, smtp, "free@example.com")
    assert link_in(reset)[0] == "/password/reset"
    [note] = await inbox(app, smtp, "nobody@example.com")
    assert "no account uses it" in text_of(note)
    assert LINK.search(text_of(note)) is None
    requests = await audited(app, "user.password_reset_requested")
    names = Names(users={people.free.id: "Free"})
    assert sorted(describe(a, names).split(" ", 1)[1] for a in requests) == [
        "asked for a password reset for an address no account uses",
        "asked for a password reset link for Free",
    ]


async def test_a_reset_sets_the_password_and_signs_out_everywhere(app, client, people, smtp):
    here, elsewhere = await sign_in(client, "free"), await sign_in(client, "free")
    assert (await forgot(client, "FREE@example.com")).status_code == 202
    [mail] = await inbox(app, smtp, "free@example.com")
    token = link_in(mail)[1]

    r = await client.post(f"{API}/auth/password/reset", json={"token": token, "password": NEW})
    assert r.status_code == 204, r.text

    old = await client.post(f"{API}/auth/login", json={"login": "free", "password": PASSWORD})
    assert old.status_code == 401
    for session in (here, elsewhere):
        gone = await client.get(f"{API}/me", headers=bearer(session["access_token"]))
        assert gone.status_code == 401
        refresh = {"refresh_token": session["refresh_token"]}
        assert (await client.post(f"{API}/auth/refresh", json=refresh)).status_code == 401
    fresh = await sign_in(client, "free", NEW)
    assert fresh["user"]["email_verified"] is True  # they read mail sent to it

    again = await client.post(
        f"{API}/auth/password/reset", json={"token": token, "password": "yet another one 9"}
    )
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_link"
    _, notice = await inbox(app, smtp, "free@example.com")
    assert "was changed" in str(notice["Subject"])
    [entry] = await audited(app, "user.password_reset")
    assert entry.target_id == people.free.id
    assert describe(entry, Names(users={people.free.id: "Free"})) == (
        "Free chose a new password with an emailed link"
    )


async def test_a_weak_password_is_refused_and_the_link_still_works(app, client, people, smtp):
    await forgot(client, "free@example.com")
    [mail] = await inbox(app, smtp, "free@example.com")
    token = link_in(mail)[1]
    for weak, says in (("short", "at least 8"), ("password123", "most common")):
        r = await client.post(f"{API}/auth/password/reset", json={"token": token, "password": weak})
        assert r.status_code == 422 and says in r.json()["error"]["fields"]["password"]
    ok = await client.post(f"{API}/auth/password/reset", json={"token": token, "password": NEW})
    assert ok.status_code == 204


async def test_a_reset_link_expires_and_only_the_newest_works(app, client, people, smtp, clock):
    await forgot(client, "free@example.com")
    await forgot(client, "free@example.com")
    first, second = await inbox(app, smtp, "free@example.com")
    body = {"token": link_in(first)[1], "password": NEW}
    assert (await client.post(f"{API}/auth/password/reset", json=body)).status_code == 400
    clock.advance(dt.timedelta(minutes=61))
    body = {"token": link_in(second)[1], "password": NEW}
    r = await client.post(f"{API}/auth/password/reset", json=body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_link"
    await sign_in(client, "free")  # nothing changed


async def test_two_resets_with_one_link_at_once_set_one_password(app, client, people, smtp):
    await forgot(client, "free@example.com")
    [mail] = await inbox(app, smtp, "free@example.com")
    token = link_in(mail)[1]
    tries = ["first new passphrase", "second new passphrase"]
    answers = await asyncio.gather(
        *(
            client.post(f"{API}/auth/password/reset", json={"token": token, "password": p})
            for p in tries
        )
    )
    assert sorted(r.status_code for r in answers) == [204, 400]
    won = tries[[r.status_code for r in answers].index(204)]
    lost = tries[1 - tries.index(won)]
    await sign_in(client, "free", won)
    r = await client.post(f"{API}/auth/login", json={"login": "free", "password": lost})
    assert r.status_code == 401


async def median_gap(client: AsyncClient, tries: int) -> float:
    """|median(known) - median(unknown)| in seconds, tries interleaved so drift hits both."""
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    for i in range(tries):
        pair = [("known", "free@example.com"), ("unknown", f"nobody{i}@example.com")]
        for kind, email in pair if i % 2 else reversed(pair):
            start = time.perf_counter()
            r = await forgot(client, email)
            times[kind].append(time.perf_counter() - start)
            assert r.status_code == 202
    return abs(statistics.median(times["known"]) - statistics.median(times["unknown"]))


async def test_forgot_takes_as_long_for_an_unknown_address_as_for_a_known_one(client, people):
    """Timing tells nothing: the medians of 20 tries each are within 5 ms. A real difference
    shows in every round; a machine busy with other work may blur one, so up to three."""
    for _ in range(3):  # warm up both paths (templates, statements)
        await forgot(client, "free@example.com")
        await forgot(client, "nobody@example.com")
    gaps = []
    for _ in range(3):
        gaps.append(await median_gap(client, 20))
        if gaps[-1] < 0.005:
            break
    assert min(gaps) < 0.005, gaps


class TestLimits:
    @pytest.fixture
    def settings(self, settings):  # type: ignore[no-untyped-def]
        return settings.model_copy(
            update={
                "rate_limits_enabled": True,
                "rate_forgot_per_email_per_hour": 2,
                "rate_login_per_minute": 3,
            }
        )

    async def test_wrong_passwords_for_a_change_of_email_count_as_sign_in_tries(
        self, client, people
    ):
        for _ in range(3):
            r = await change_email(client, people.priv, "priv@new.example", "guess")
            assert r.status_code == 403
        r = await change_email(client, people.priv, "priv@new.example")
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"

    async def test_forgot_is_limited_per_address_asked_about_known_or_not(self, client, people):
        for email in ("free@example.com", "nobody@example.com"):
            for _ in range(2):
                assert (await forgot(client, email)).status_code == 202
            limited = await forgot(client, email)
            assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
            assert limited.json()["error"]["code"] == "rate_limited"


# --- change of email ---


async def change_email(client: AsyncClient, who, email: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await client.post(
        f"{API}/me/email", json={"email": email, "password": password}, headers=who.headers
    )


async def test_a_new_address_takes_effect_only_once_confirmed(app, client, people, smtp):
    wrong = await change_email(client, people.priv, "priv@new.example", "not my password")
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "wrong_password"
    same = await change_email(client, people.priv, "PRIV@example.com")
    assert same.status_code == 422 and same.json()["error"]["code"] == "same_email"

    r = await change_email(client, people.priv, "Priv@New.example")
    assert r.status_code == 202, r.text
    assert r.json()["pending_email"] == "priv@new.example"
    waiting = await me(client, people.priv.token)
    assert (waiting["email"], waiting["pending_email"]) == ("priv@example.com", "priv@new.example")
    [mail] = await inbox(app, smtp, "priv@new.example")
    path, token = link_in(mail)
    assert path == "/confirm-email"
    assert await inbox(app, smtp, "priv@example.com") == []

    ok = await client.post(f"{API}/auth/email/confirm", json={"token": token})
    assert ok.status_code == 200
    assert ok.json() == {"email": "priv@new.example", "email_verified": True}
    mine = await me(client, people.priv.token)
    assert (mine["email"], mine["email_verified"]) == ("priv@new.example", True)
    assert mine["pending_email"] is None
    [notice] = await inbox(app, smtp, "priv@example.com")
    assert "p•••@new.example" in text_of(notice)

    await sign_in(client, "priv@new.example")
    old = await client.post(
        f"{API}/auth/login", json={"login": "priv@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    again = await client.post(f"{API}/auth/email/confirm", json={"token": token})
    assert again.status_code == 400
    [entry] = await audited(app, "user.email_changed")
    names = Names(users={people.priv.id: "Priv"})
    assert describe(entry, names) == (
        "Priv changed their email address from priv@example.com to priv@new.example"
    )
    [asked] = await audited(app, "user.email_change_requested")
    assert describe(asked, names) == "Priv asked to change their email address"


async def test_a_taken_address_gets_the_same_answer_and_its_owner_is_told(
    app, client, people, smtp
) -> None:
    free = await change_email(client, people.priv, "someone.new@example.org")
    taken = await change_email(client, people.plus, "free@example.com")
    assert free.status_code == taken.status_code == 202
    assert taken.json()["pending_email"] == "free@example.com"
    assert set(free.json()) == set(taken.json())

    [note] = await inbox(app, smtp, "free@example.com")
    assert "already uses it" in text_of(note) and LINK.search(text_of(note)) is None
    assert (await me(client, people.plus.token))["email"] == "plus@example.com"
    assert (await me(client, people.free.token))["email"] == "free@example.com"


async def test_an_address_taken_meanwhile_is_refused_at_confirmation(app, client, people, smtp):
    assert (await change_email(client, people.priv, "shared@example.org")).status_code == 202
    [mail] = await inbox(app, smtp, "shared@example.org")
    await register_as(client, "shared@example.org")
    r = await client.post(f"{API}/auth/email/confirm", json={"token": link_in(mail)[1]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_taken"
    assert (await me(client, people.priv.token))["email"] == "priv@example.com"


async def register_as(client: AsyncClient, email: str) -> None:
    r = await client.post(
        f"{API}/auth/register", json={"email": email, "username": "sharer", "password": PASSWORD}
    )
    assert r.status_code == 201, r.text


async def test_a_changed_address_takes_the_links_sent_to_the_old_one_with_it(
    app, client, people, smtp
) -> None:
    await forgot(client, "priv@example.com")
    [reset] = await inbox(app, smtp, "priv@example.com")
    await change_email(client, people.priv, "priv@new.example")
    [confirm] = await inbox(app, smtp, "priv@new.example")
    assert (
        await client.post(f"{API}/auth/email/confirm", json={"token": link_in(confirm)[1]})
    ).status_code == 200
    r = await client.post(
        f"{API}/auth/password/reset", json={"token": link_in(reset)[1], "password": NEW}
    )
    assert r.status_code == 400
