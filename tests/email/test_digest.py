"""Email digests, against a real SMTP server: a member who is away hears how many messages wait
and from whom, never what they say; not while connected, not for muted conversations or
message requests, at most once per period and never twice about the same message; and one
click on the unsubscribe link the email carries stops them."""

from __future__ import annotations

import asyncio
import datetime as dt
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from pigeon.accounts import service as accounts
from pigeon.core.clock import Clock
from pigeon.email import worker
from pigeon.email.models import OutboxEmail
from pigeon.email.outbox import queue_email
from pigeon.notifications import digest
from pigeon.settings import Settings
from tests.email.conftest import COMMUNITY
from tests.media import samples
from tests.realtime.conftest import serving
from tests.support.mail import PUBLIC_URL
from tests.support.people import People, access_token, dm, send
from tests.support.smtp import SmtpServer

API = "/api/v1"
DELAY = dt.timedelta(seconds=900)
AWAY = DELAY + dt.timedelta(seconds=1)
PROBE = "zebra-7f3a quiet secret"  # in message bodies and a file name: never in an email


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The job runs when a test says so: its background loop stays off."""
    return settings.model_copy(
        update={"digest_delay_seconds": int(DELAY.total_seconds()), "digest_interval_seconds": 0}
    )


async def run(app) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    """One pass of the digest job, then one of delivery; the emails this pass sent."""
    rt = app.state.runtime
    before = len(app.state.smtp.messages)
    await digest.send_exclusive(rt, app.state.hub.presence.is_online)
    await worker.deliver_exclusive(rt)
    return list(app.state.smtp.messages[before:])


@pytest.fixture
def mail(app, smtp: SmtpServer) -> SmtpServer:  # type: ignore[no-untyped-def]
    app.state.smtp = smtp
    return smtp


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def html_of(msg: EmailMessage) -> str:
    part = msg.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def later(app, people: People, clock: Clock, delta: dt.timedelta) -> None:  # type: ignore[no-untyped-def]
    """Move time on; everyone's access token is renewed, as their clients would."""
    clock.advance(delta)
    for person in people.values():
        person.token = access_token(app.state.runtime, person.id, person.family_id)


def to(msg: EmailMessage) -> str:
    return str(msg["To"])


async def test_an_away_member_hears_who_wrote_and_how_much_never_what(
    app, client, people: People, mail: SmtpServer, clock: Clock
) -> None:
    conv = await dm(client, people.priv, people.free)
    upload = await client.post(
        f"{API}/media/upload",
        files={"file": (f"{PROBE}.pdf", samples.PDF, "application/pdf")},
        headers=people.priv.headers,
    )
    assert upload.status_code == 201, upload.text
    sent = await send(
        client, people.priv, conv["id"], f"first {PROBE}", attachment_ids=[upload.json()["id"]]
    )
    assert sent.status_code == 201, sent.text
    await send(client, people.priv, conv["id"], f"second {PROBE}")
    group = await client.post(
        f"{API}/conversations",
        json={
            "kind": "group",
            "participant_ids": [people.free.id, people.plus.id],
            "title": "Book club",
        },
        headers=people.priv.headers,
    )
    assert group.status_code == 201, group.text
    await send(client, people.plus, group.json()["id"], f"third {PROBE}")
    later(app, people, clock, AWAY)

    emails = {to(m): m for m in await run(app)}

    # Plus's group message waits for priv too; Plus, who only sent, gets none
    assert sorted(emails) == ["free@example.com", "priv@example.com"]
    assert "1 message in Book club, from Plus" in text_of(emails["priv@example.com"])
    msg = emails["free@example.com"]
    assert msg["Subject"] == f"3 unread messages on {COMMUNITY}"
    assert msg["From"] == f"{COMMUNITY} <pigeon@example.org>"
    text, html = text_of(msg), html_of(msg)
    assert "2 messages from Priv" in text and "1 message in Book club, from Plus" in text
    assert f"{PUBLIC_URL}/messages/{conv['id']}" in text
    assert f"{PUBLIC_URL}/messages/{group.json()['id']}" in text
    assert f"Read them: {PUBLIC_URL}/messages\r\n" in text
    assert f'href="{PUBLIC_URL}/messages/{conv["id"]}"' in html and "Book club" in html
    for sent_email in emails.values():
        for word in PROBE.split():
            assert word not in sent_email.as_string()  # headers, text and HTML alike


async def test_nothing_while_connected_then_a_digest_once_away_long_enough(
    app, client, people: People, mail: SmtpServer, clock: Clock
) -> None:
    conv = await dm(client, people.priv, people.free)
    async with serving(app) as server:
        live = await server.connect(people.free)
        await send(client, people.priv, conv["id"], "are you there?")
        later(app, people, clock, AWAY)
        assert await run(app) == []  # online: they see it live
        await live.close()
        await last_seen(app, people.free.id)
    assert await run(app) == []  # just seen: not away yet
    later(app, people, clock, AWAY)
    [msg] = await run(app)
    assert to(msg) == "free@example.com" and "1 message from Priv" in text_of(msg)


async def last_seen(app, user_id: int) -> dt.datetime:  # type: ignore[no-untyped-def]
    """Once the hub has seen the connection go, it records when: wait for that."""
    for _ in range(200):
        async with app.state.runtime.dbs.app.read() as session:
            seen = (await accounts.users_by_ids(session, [user_id]))[user_id].last_seen_at
        if seen is not None:
            return seen
        await asyncio.sleep(0.025)
    raise AssertionError("the last seen time was never recorded")


async def test_muted_conversations_and_message_requests_send_nothing(
    app, client, people: People, mail: SmtpServer, clock: Clock
) -> None:
    muted = await dm(client, people.priv, people.free)
    r = await client.patch(
        f"{API}/conversations/{muted['id']}", json={"muted": True}, headers=people.free.headers
    )
    assert r.status_code == 200, r.text
    await send(client, people.priv, muted["id"], "in a muted conversation")
    request = await dm(client, people.plus, people.free2, accepted=False)
    await send(client, people.plus, request["id"], "a stranger's first message")
    later(app, people, clock, AWAY)

    assert await run(app) == []

    await send(client, people.manager, (await dm(client, people.manager, people.free))["id"], "hi")
    [msg] = await run(app)
    assert "1 message from Manager" in text_of(msg) and "Priv" not in text_of(msg)


async def test_at_most_one_per_period_and_never_the_same_message_twice(
    app, client, people: People, mail: SmtpServer, clock: Clock
) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "one")
    later(app, people, clock, AWAY)
    [first] = await run(app)
    assert "1 message from Priv" in text_of(first)

    await send(client, people.priv, conv["id"], "two")
    await send(client, people.priv, conv["id"], "three")
    later(app, people, clock, DELAY / 2)
    assert await run(app) == []  # a digest went out less than a period ago
    later(app, people, clock, DELAY / 2 + dt.timedelta(seconds=1))
    [second] = await run(app)
    assert second["Subject"] == f"2 unread messages on {COMMUNITY}"  # not "one" again
    assert "2 messages from Priv" in text_of(second)

    later(app, people, clock, AWAY * 3)
    assert await run(app) == []  # still unread, but already told: nothing new, no email


async def test_read_messages_and_closed_accounts_get_nothing(
    app, client, people: People, mail: SmtpServer, clock: Clock
) -> None:
    conv = await dm(client, people.priv, people.free)
    sent = (await send(client, people.priv, conv["id"], "read me")).json()
    read = await client.post(
        f"{API}/conversations/{conv['id']}/read",
        json={"message_id": sent["id"]},
        headers=people.free.headers,
    )
    assert read.status_code == 200, read.text
    other = await dm(client, people.priv, people.free2)
    await send(client, people.priv, other["id"], "for someone disabled")
    off = await client.patch(
        f"{API}/admin/users/{people.free2.id}",
        json={"is_active": False},
        headers=people.admin.headers,
    )
    assert off.status_code == 200, off.text
    later(app, people, clock, AWAY)

    assert await run(app) == []


async def test_the_one_click_unsubscribe_in_the_email_stops_digests(
    app, client, people: People, mail: SmtpServer, clock: Clock
) -> None:
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "hello")
    later(app, people, clock, AWAY)
    [msg] = await run(app)

    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    header = str(msg["List-Unsubscribe"])
    assert header.startswith(f"<{PUBLIC_URL}/unsubscribe/") and header.endswith(">")
    url = header[1:-1]
    assert url in text_of(msg) and f'href="{url}"' in html_of(msg)

    # what a mail client does (RFC 8058): POST the body, no cookie, no CSRF token
    r = await client.post(urlsplit(url).path, data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "You will get no more digest emails" in r.text
    me = await client.get(f"{API}/me/notifications", headers=people.free.headers)
    assert me.json() == {"email_digest": False}

    await send(client, people.priv, conv["id"], "are you still there?")
    later(app, people, clock, AWAY * 2)
    assert await run(app) == []
    # a second click is harmless
    assert (await client.post(urlsplit(url).path)).status_code == 200


@pytest.mark.parametrize(
    "token",
    [
        "digest.{free}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # forged signature
        "digest.{free}",  # cut short
        "push.{free}.{sig}",  # another purpose, signed for digests
        "digest.{plus}.{sig}",  # someone else, with free's signature
        "%E2%98%83",
        "x" * 100,
    ],
)
async def test_a_forged_or_garbled_unsubscribe_link_is_refused(
    app, client, people: People, mail: SmtpServer, clock: Clock, token: str
) -> None:
    conv = await dm(client, people.plus, people.free)
    await send(client, people.plus, conv["id"], "hello")
    later(app, people, clock, AWAY)
    [msg] = await run(app)
    sig = str(msg["List-Unsubscribe"]).rstrip(">").rsplit(".", 1)[1]
    path = "/unsubscribe/" + token.format(free=people.free.id, plus=people.plus.id, sig=sig)

    for r in (await client.post(path), await client.get(path)):
        assert r.status_code == 404, r.text
        assert "not valid" in r.text or "does not exist" in r.text
    for who in (people.free, people.plus):
        me = await client.get(f"{API}/me/notifications", headers=who.headers)
        assert me.json() == {"email_digest": True}


async def test_the_notification_settings_round_trip_through_the_api(
    app, client, people: People
) -> None:
    h = people.free.headers
    assert (await client.get(f"{API}/me/notifications", headers=h)).json() == {"email_digest": True}
    r = await client.patch(f"{API}/me/notifications", json={"email_digest": False}, headers=h)
    assert r.status_code == 200 and r.json() == {"email_digest": False}
    assert (await client.patch(f"{API}/me/notifications", json={}, headers=h)).json() == {
        "email_digest": False
    }
    bad = await client.patch(f"{API}/me/notifications", json={"email_digest": "yes"}, headers=h)
    assert bad.status_code == 422 and "error" in bad.json()
    unknown = await client.patch(f"{API}/me/notifications", json={"push": True}, headers=h)
    assert unknown.status_code == 422
    assert (await client.get(f"{API}/me/notifications")).status_code == 401
    other = await client.get(f"{API}/me/notifications", headers=people.priv.headers)
    assert other.json() == {"email_digest": True}  # one's own only


@pytest.mark.parametrize(
    "headers",
    [
        {"Bcc": "everyone@example.com"},  # the sender writes the addresses itself
        {"List-Unsubscribe": "<https://x.example>\r\nBcc: everyone@example.com"},
        {"Bad Name": "x"},
    ],
)
async def test_an_extra_header_cannot_add_recipients_or_headers_of_its_own(
    app, headers: dict[str, str]
) -> None:
    rt = app.state.runtime
    with pytest.raises(ValueError):
        async with rt.uow_scope() as uow:
            await queue_email(
                uow,
                "reader@example.com",
                "test",
                {},
                kind="test",
                settings=rt.settings,
                headers=headers,
            )
    async with rt.dbs.app.read() as session:
        assert (await session.scalars(select(OutboxEmail))).all() == []
