"""The outbox's promises, against a real SMTP server: an email goes out exactly when the change
that caused it commits, survives the server being down, dies visibly, and is sent once."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update

from pigeon.core.errors import Conflict
from pigeon.core.runtime import Runtime
from pigeon.email import worker
from pigeon.email.models import OutboxEmail
from pigeon.email.outbox import queue_email
from tests.email.conftest import COMMUNITY
from tests.support.mail import PUBLIC_URL
from tests.support.people import access_token
from tests.support.smtp import SmtpServer, closed_port, only_login


async def queue(rt: Runtime, to: str = "reader@example.com") -> int:
    async with rt.uow_scope() as uow:
        row = await queue_email(uow, to, "test", {}, kind="test", settings=rt.settings)
    return row.id


async def outbox(rt: Runtime) -> list[OutboxEmail]:
    async with rt.dbs.app.read() as session:
        return list(await session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


async def test_a_committed_email_is_delivered_with_text_and_html(app, smtp: SmtpServer) -> None:
    rt = app.state.runtime
    await queue(rt)
    assert smtp.messages == []  # queued, not sent: the worker sends

    done = await worker.deliver_exclusive(rt)

    assert (done.sent, done.failed, done.dead) == (1, 0, 0)
    [msg] = smtp.messages
    assert msg["From"] == f"{COMMUNITY} <pigeon@example.org>"
    assert msg["To"] == "reader@example.com"
    assert msg["Subject"] == f"Test email from {COMMUNITY}"
    assert smtp.inbox.recipients == [["reader@example.com"]]
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    assert COMMUNITY in text.get_content() and f"{PUBLIC_URL}/login" in text.get_content()
    assert COMMUNITY in html.get_content() and f'href="{PUBLIC_URL}/login"' in html.get_content()
    [row] = await outbox(rt)
    assert row.sent_at is not None and row.attempts == 1 and row.last_error is None
    # sent is sent: another pass sends nothing
    assert (await worker.deliver_exclusive(rt)).sent == 0
    assert len(smtp.messages) == 1


async def test_an_email_queued_in_a_rolled_back_change_is_never_sent(app, smtp: SmtpServer) -> None:
    rt = app.state.runtime
    with pytest.raises(RuntimeError):
        async with rt.uow_scope() as uow:
            await queue_email(
                uow, "reader@example.com", "test", {}, kind="test", settings=rt.settings
            )
            raise RuntimeError("the change that caused it failed")

    done = await worker.deliver_exclusive(rt)

    assert done.sent == 0 and smtp.messages == []
    assert await outbox(rt) == []


async def test_a_bad_address_is_refused_before_anything_is_queued(app) -> None:
    rt = app.state.runtime
    with pytest.raises(Exception) as caught:
        await queue(rt, to="not an address\r\nBcc: everyone@example.com")
    assert getattr(caught.value, "code", None) == "invalid_email"
    assert await outbox(rt) == []


async def test_smtp_down_backs_off_then_dies_then_an_admin_retry_delivers_it(
    app, client, people, smtp: SmtpServer, clock, other_runtime
) -> None:
    rt = app.state.runtime
    email_id = await queue(rt)
    waits = []
    async with other_runtime(smtp_port=closed_port()) as down:
        for attempt in (1, 2, 3):
            done = await worker.deliver_exclusive(down)
            [row] = await outbox(rt)
            assert row.attempts == attempt
            assert row.last_error and "connection refused" in row.last_error
            assert row.sent_at is None
            if attempt < 3:
                assert done.failed == 1 and row.dead_at is None
                waits.append(row.next_attempt_at - clock.now())
                # not due yet: a pass now tries nothing
                assert (await worker.deliver_exclusive(down)).failed == 0
                clock.advance(row.next_attempt_at - clock.now() + dt.timedelta(seconds=1))
            else:
                assert done.dead == 1 and row.dead_at is not None
    assert waits[1] > waits[0] > dt.timedelta(0)  # exponential backoff
    assert smtp.messages == []

    # dead letters are for admins to see, without bodies
    r = await client.get("/api/v1/admin/email?state=dead", headers=people.admin.headers)
    assert r.status_code == 200, r.text
    [listed] = r.json()
    assert listed["id"] == email_id and listed["attempts"] == 3
    assert "connection refused" in listed["last_error"]
    assert "text_body" not in listed and "html_body" not in listed
    pending = await client.get("/api/v1/admin/email", headers=people.admin.headers)
    assert pending.json() == []

    # a dead email is not retried on its own
    clock.advance(dt.timedelta(days=30))
    assert (await worker.deliver_exclusive(rt)).sent == 0
    admin = {"Authorization": f"Bearer {access_token(rt, people.admin.id)}"}  # a month later

    r = await client.post(f"/api/v1/admin/email/{email_id}/retry", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["dead_at"] is None and r.json()["attempts"] == 0
    again = await client.post(f"/api/v1/admin/email/{email_id}/retry", headers=admin)
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_dead"

    assert (await worker.deliver_exclusive(rt)).sent == 1
    assert len(smtp.messages) == 1
    sent = await client.get("/api/v1/admin/email?state=sent", headers=admin)
    assert [e["id"] for e in sent.json()] == [email_id]
    audit = await client.get("/api/v1/admin/audit?action=email.retried", headers=admin)
    assert [(a["target_type"], a["target_id"]) for a in audit.json()] == [("email", email_id)]


async def test_two_workers_at_once_send_each_email_exactly_once(
    app, smtp: SmtpServer, other_runtime
) -> None:
    rt = app.state.runtime
    addresses = [f"reader{i}@example.com" for i in range(12)]
    for address in addresses:
        await queue(rt, to=address)
    async with other_runtime() as second:
        # under the lease: one delivers, the other is told someone else is at it
        first_pass = await asyncio.gather(
            worker.deliver_exclusive(rt),
            worker.deliver_exclusive(second),
            return_exceptions=True,
        )
        for outcome in first_pass:
            assert isinstance(outcome, worker.Delivery | Conflict), outcome
        # without it (an expired lease, `pigeon email test` beside a server), the claim alone
        # still keeps an email from going out twice
        for address in addresses:
            await queue(rt, to="again-" + address)
        await asyncio.gather(worker.deliver_due(rt), worker.deliver_due(second))
        await worker.deliver_due(second)  # whatever the first pass left

    received = sorted(str(m["To"]) for m in smtp.messages)
    assert received == sorted(addresses + ["again-" + a for a in addresses])
    assert all(row.sent_at is not None and row.attempts == 1 for row in await outbox(rt))


async def test_the_password_never_reaches_the_recorded_error(
    app, smtp: SmtpServer, other_runtime
) -> None:
    server = SmtpServer(authenticator=only_login("pigeon", "right one"), auth_require_tls=False)
    server.controller.start()
    try:
        rt = app.state.runtime
        await queue(rt)
        secret = "wrong-but-secret-password"
        async with other_runtime(
            smtp_port=server.port, smtp_username="pigeon", smtp_password=SecretStr(secret)
        ) as wrong:
            done = await worker.deliver_due(wrong)
        [row] = await outbox(rt)
        assert done.failed == 1 and row.last_error and "535" in row.last_error
        assert secret not in row.last_error and secret not in " ".join(done.errors)
        assert server.messages == []
        # and with the right one it goes through
        row_due = row.next_attempt_at - rt.clock.now() + dt.timedelta(seconds=1)
        rt.clock.advance(row_due)
        async with other_runtime(
            smtp_port=server.port, smtp_username="pigeon", smtp_password=SecretStr("right one")
        ) as right:
            assert (await worker.deliver_due(right)).sent == 1
        assert len(server.messages) == 1
    finally:
        server.controller.stop()


async def test_starttls_refused_by_the_server_is_a_clear_error(app, other_runtime) -> None:
    rt = app.state.runtime
    await queue(rt)
    async with other_runtime(smtp_tls="starttls") as tls:
        done = await worker.deliver_due(tls)
    assert done.failed == 1 and "STARTTLS" in done.errors[0]


async def test_with_no_smtp_host_emails_wait_in_the_outbox(app, other_runtime) -> None:
    rt = app.state.runtime
    await queue(rt)
    async with other_runtime(smtp_host=None) as off:
        done = await worker.deliver_due(off)
    assert done.off and done.sent == done.failed == 0
    [row] = await outbox(rt)
    assert row.attempts == 0 and row.sent_at is None and row.dead_at is None


async def test_the_servers_background_worker_delivers_on_its_own(settings, clock, smtp) -> None:
    from pigeon.app import create_app

    application = create_app(
        settings.model_copy(update={"email_worker_interval_seconds": 0.05}), clock=clock
    )
    async with application.router.lifespan_context(application):
        await queue(application.state.runtime)
        for _ in range(200):  # the worker's task, not a clock: wait for it, up to 10 seconds
            if smtp.messages:
                break
            await asyncio.sleep(0.05)
    assert len(smtp.messages) == 1


async def test_a_copy_sent_again_after_a_crash_carries_the_same_message_id(
    app, smtp: SmtpServer, clock
) -> None:
    """A process killed after the SMTP server took an email but before the row was marked sent
    leaves it claimed; once the claim runs out it goes again, as the same email (the same
    Message-ID, which mail clients use to drop the copy), not as a new one."""
    rt = app.state.runtime
    email_id = await queue(rt)
    other_id = await queue(rt)
    assert (await worker.deliver_exclusive(rt)).sent == 2
    async with rt.dbs.app.write() as session:  # as if the mark had never been written
        await session.execute(
            update(OutboxEmail).where(OutboxEmail.id == email_id).values(sent_at=None)
        )
    clock.advance(dt.timedelta(seconds=worker.claim_seconds(rt.settings) + 1))
    assert (await worker.deliver_exclusive(rt)).sent == 1
    first, other, again = smtp.messages
    assert first["Message-ID"] == again["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"].startswith(f"<outbox-{email_id}.")
    assert other["Message-ID"].startswith(f"<outbox-{other_id}.")
