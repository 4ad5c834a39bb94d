"""Invitations, through the API, with a real SMTP server receiving the emails: the link in the
received email registers the invited person into the community and tier it names, once; an
existing member joins only by accepting; staff invite only where and as the rules allow."""

from __future__ import annotations

import asyncio
import datetime as dt
import re

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select

from pigeon.accounts.models import User
from pigeon.core.security import token_digest
from pigeon.email import worker
from pigeon.settings import Settings
from tests.email.conftest import COMMUNITY
from tests.support.mail import PUBLIC_URL, with_email
from tests.support.people import PASSWORD, People, Person, access_token
from tests.support.smtp import SmtpServer, smtp  # noqa: F401

API = "/api/v1"
LINK = re.compile(re.escape(PUBLIC_URL) + r"(/register\?invitation=|/invitations/)([A-Za-z0-9_-]+)")


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:  # noqa: F811
    """Invite mode, with email on through the test's SMTP server (delivered when a test says)."""
    return with_email(settings, smtp, registration="invite", default_community_name=COMMUNITY)


async def invite(
    client: AsyncClient, who: Person, email: str, **extra: object
) -> dict[str, object]:
    r = await client.post(
        f"{API}/invitations/send", json={"email": email, **extra}, headers=who.headers
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def communities_of(client: AsyncClient, token: str) -> list[str]:
    me = await client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {token}"})
    return sorted(c["slug"] for c in me.json()["communities"])


async def riverside_id(client: AsyncClient, people: People) -> int:
    r = await client.get(f"{API}/communities", headers=people.admin.headers)
    return next(c["id"] for c in r.json() if c["slug"] == "riverside")


async def received_link(app, smtp: SmtpServer, to: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]  # noqa: F811
    """Deliver the outbox and read the link from the text body of the email `to` received."""
    await worker.deliver_exclusive(app.state.runtime)
    [msg] = [m for m in smtp.messages if m["To"] == to]
    text = msg.get_body(("plain",))
    assert text is not None
    found = LINK.search(text.get_content())
    assert found, text.get_content()
    return found.group(0), found.group(2)


def register_body(email: str, username: str, token: str | None) -> dict[str, object]:
    body: dict[str, object] = {"email": email, "username": username, "password": PASSWORD}
    if token is not None:
        body["invitation_token"] = token
    return body


async def test_the_emailed_link_registers_into_its_community_and_tier_once(
    app,
    client,
    people,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    riverside = await riverside_id(client, people)
    sent = await invite(
        client, people.admin, "New.Reader@Example.com", community_id=riverside, tier="privileged"
    )
    assert sent["state"] == "pending" and sent["email"] == "new.reader@example.com"

    link, token = await received_link(app, smtp, "new.reader@example.com")
    assert link == sent["link"] and link.startswith(f"{PUBLIC_URL}/register?invitation=")
    [msg] = smtp.messages
    assert "Riverside" in msg["Subject"]
    whole = msg.as_string()
    assert token_digest(token) not in whole  # the email carries the link, never the digest

    r = await client.get(f"{API}/invitations/verify/{token}")
    assert r.status_code == 200
    assert r.json()["email"] == "new.reader@example.com"
    assert r.json()["community"] == {"id": riverside, "name": "Riverside"}
    assert r.json()["tier"] == "privileged" and r.json()["existing_account"] is False

    r = await client.post(
        f"{API}/auth/register", json=register_body("new.reader@example.com", "newreader", token)
    )
    assert r.status_code == 201, r.text
    assert r.json()["user"]["tier"] == "privileged"
    assert await communities_of(client, r.json()["access_token"]) == ["riverside"]

    # single use: the same link neither verifies nor registers again
    assert (await client.get(f"{API}/invitations/verify/{token}")).status_code == 404
    again = await client.post(
        f"{API}/auth/register", json=register_body("new.reader@example.com", "another", token)
    )
    assert again.status_code == 404 and again.json()["error"]["code"] == "invalid_invitation"
    listed = await client.get(f"{API}/invitations?state=accepted", headers=people.admin.headers)
    assert [i["email"] for i in listed.json()] == ["new.reader@example.com"]
    assert "link" not in listed.json()[0]  # shown once, when it was sent


async def test_invite_mode_refuses_registration_without_a_token(client, people) -> None:
    r = await client.post(f"{API}/auth/register", json=register_body("x@example.com", "x_x", None))
    assert r.status_code == 403 and r.json()["error"]["code"] == "registration_closed"


async def test_open_mode_still_honours_an_invitation(app, client, people) -> None:
    app.state.settings.registration = "open"
    riverside = await riverside_id(client, people)
    token = str(
        (await invite(client, people.admin, "o@example.com", community_id=riverside))["link"]
    ).rsplit("=", 1)[1]
    r = await client.post(
        f"{API}/auth/register", json=register_body("o@example.com", "oo_o", token)
    )
    assert r.status_code == 201
    assert await communities_of(client, r.json()["access_token"]) == ["riverside"]
    plain = await client.post(
        f"{API}/auth/register", json=register_body("p@example.com", "ppp", None)
    )
    assert plain.status_code == 201
    assert await communities_of(client, plain.json()["access_token"]) == ["store"]


async def test_the_invited_address_must_be_the_accounts(client, people) -> None:
    token = str((await invite(client, people.admin, "right@example.com"))["link"]).rsplit("=", 1)[1]
    r = await client.post(
        f"{API}/auth/register", json=register_body("wrong@example.com", "wrong", token)
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_invitation"
    ok = await client.post(
        f"{API}/auth/register", json=register_body("RIGHT@example.com", "right", token)
    )
    assert ok.status_code == 201


async def test_an_expired_link_lets_nobody_in(app, client, people, clock) -> None:
    token = str((await invite(client, people.admin, "late@example.com"))["link"]).rsplit("=", 1)[1]
    clock.advance(dt.timedelta(days=app.state.settings.invitation_days, seconds=1))
    assert (await client.get(f"{API}/invitations/verify/{token}")).status_code == 404
    r = await client.post(
        f"{API}/auth/register", json=register_body("late@example.com", "late", token)
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "invalid_invitation"
    fresh = access_token(app.state.runtime, people.admin.id)  # the admin's token expired too
    listed = await client.get(
        f"{API}/invitations?state=expired", headers={"Authorization": f"Bearer {fresh}"}
    )
    assert [i["email"] for i in listed.json()] == ["late@example.com"]


async def test_revoked_and_replaced_links_let_nobody_in(client, people) -> None:
    first = await invite(client, people.admin, "twice@example.com")
    second = await invite(client, people.admin, "twice@example.com")  # replaces the first
    old = str(first["link"]).rsplit("=", 1)[1]
    new = str(second["link"]).rsplit("=", 1)[1]
    assert (await client.get(f"{API}/invitations/verify/{old}")).status_code == 404
    assert (await client.get(f"{API}/invitations/verify/{new}")).status_code == 200

    r = await client.post(f"{API}/invitations/{second['id']}/revoke", headers=people.admin.headers)
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    r = await client.post(
        f"{API}/auth/register", json=register_body("twice@example.com", "twice", new)
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "invalid_invitation"
    again = await client.post(
        f"{API}/invitations/{second['id']}/revoke", headers=people.admin.headers
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_pending"
    states = await client.get(f"{API}/invitations?state=revoked", headers=people.admin.headers)
    assert len(states.json()) == 2


async def test_managers_invite_only_into_their_communities_and_only_as_free(client, people) -> None:
    riverside = await riverside_id(client, people)
    r = await client.post(
        f"{API}/invitations/send",
        json={"email": "a@example.com", "community_id": riverside},
        headers=people.manager.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_community"
    r = await client.post(
        f"{API}/invitations/send",
        json={"email": "a@example.com", "tier": "privileged"},
        headers=people.manager.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "tier_not_allowed"
    r = await client.post(
        f"{API}/invitations/send", json={"email": "a@example.com"}, headers=people.priv.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "staff_only"
    ok = await invite(client, people.manager, "a@example.com", tier="free")
    assert ok["community"]["name"] == "The Store"  # the manager's own community by default
    await invite(client, people.admin, "b@example.com", community_id=riverside)

    mine = await client.get(f"{API}/invitations", headers=people.manager.headers)
    assert [i["email"] for i in mine.json()] == ["a@example.com"]
    everyone = await client.get(f"{API}/invitations", headers=people.admin.headers)
    assert {i["email"] for i in everyone.json()} == {"a@example.com", "b@example.com"}
    theirs = next(i for i in everyone.json() if i["email"] == "b@example.com")
    r = await client.post(
        f"{API}/invitations/{theirs['id']}/revoke", headers=people.manager.headers
    )
    assert r.status_code == 404
    assert (await client.get(f"{API}/invitations", headers=people.free.headers)).status_code == 403


async def test_a_member_is_not_invited_where_they_already_are(client, people) -> None:
    r = await client.post(
        f"{API}/invitations/send", json={"email": "free@example.com"}, headers=people.admin.headers
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_member"


async def test_an_existing_member_joins_only_by_accepting(
    app,
    client,
    people,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    outsider = people.outsider  # privileged, in Riverside only
    sent = await invite(client, people.admin, "outsider@example.com", tier="free")
    link, token = await received_link(app, smtp, "outsider@example.com")
    assert link == f"{PUBLIC_URL}/invitations/{token}"
    assert (await client.get(f"{API}/invitations/verify/{token}")).json()["existing_account"]
    assert await communities_of(client, outsider.token) == ["riverside"]  # not moved

    mine = await client.get(f"{API}/me/invitations", headers=outsider.headers)
    assert [i["id"] for i in mine.json()] == [sent["id"]]
    # only the invited account may answer
    r = await client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=people.plus.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "not_your_invitation"

    r = await client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=outsider.headers
    )
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    assert await communities_of(client, outsider.token) == ["riverside", "store"]
    me = await client.get(f"{API}/auth/me", headers=outsider.headers)
    assert me.json()["tier"] == "privileged"  # an invitation never lowers a tier
    assert (await client.get(f"{API}/me/invitations", headers=outsider.headers)).json() == []


async def test_declining_leaves_them_out_and_ends_the_link(client, people) -> None:
    sent = await invite(client, people.admin, "outsider@example.com")
    r = await client.post(
        f"{API}/invitations/decline",
        json={"invitation_id": sent["id"]},
        headers=people.outsider.headers,
    )
    assert r.status_code == 200 and r.json()["state"] == "declined"
    assert await communities_of(client, people.outsider.token) == ["riverside"]
    token = str(sent["link"]).rsplit("/", 1)[1]
    r = await client.post(
        f"{API}/invitations/accept", json={"token": token}, headers=people.outsider.headers
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "invalid_invitation"


async def test_an_invitation_raises_a_tier(client, people) -> None:
    sent = await invite(
        client,
        people.admin,
        "free@example.com",
        community_id=await riverside_id(client, people),
        tier="privileged_plus",
    )
    r = await client.post(
        f"{API}/invitations/accept", json={"invitation_id": sent["id"]}, headers=people.free.headers
    )
    assert r.status_code == 200
    me = await client.get(f"{API}/auth/me", headers=people.free.headers)
    assert me.json()["tier"] == "privileged_plus"


async def test_two_registrations_with_one_link_make_one_account(app, client, people) -> None:
    token = str((await invite(client, people.admin, "race@example.com"))["link"]).rsplit("=", 1)[1]
    first, second = await asyncio.gather(
        client.post(
            f"{API}/auth/register", json=register_body("race@example.com", "race_a", token)
        ),
        client.post(
            f"{API}/auth/register", json=register_body("race@example.com", "race_b", token)
        ),
    )
    assert sorted([first.status_code, second.status_code])[0] == 201
    assert sorted([first.status_code, second.status_code])[1] in (404, 409)
    async with app.state.runtime.dbs.app.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(User).where(User.email == "race@example.com")
        )
    assert count == 1


async def test_an_invitation_outlives_its_inviters_account(client, people) -> None:
    token = str((await invite(client, people.manager, "kept@example.com"))["link"]).rsplit("=", 1)[
        1
    ]
    gone = await client.request(
        "DELETE",
        f"{API}/me",
        json={"password": PASSWORD, "messages": "keep"},
        headers=people.manager.headers,
    )
    assert gone.status_code == 204, gone.text
    r = await client.post(
        f"{API}/auth/register", json=register_body("kept@example.com", "kept", token)
    )
    assert r.status_code == 201
    assert await communities_of(client, r.json()["access_token"]) == ["store"]


async def test_bad_input_gets_clear_errors(client, people) -> None:
    r = await client.post(
        f"{API}/invitations/send", json={"email": "not an address"}, headers=people.admin.headers
    )
    assert r.status_code == 422
    r = await client.post(
        f"{API}/invitations/send",
        json={"email": "x@example.com", "tier": "gold"},
        headers=people.admin.headers,
    )
    assert r.status_code == 422
    r = await client.get(f"{API}/invitations/verify/{'a' * 300}")
    assert r.status_code == 422
    r = await client.post(f"{API}/invitations/accept", json={}, headers=people.free.headers)
    assert r.status_code == 422
    assert (
        await client.post(f"{API}/invitations/send", json={"email": "x@example.com"})
    ).status_code == 401
