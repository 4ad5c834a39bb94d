"""The admin page's account tools, without script: delete someone's account from a confirm
page, and send again an email the outbox gave up on."""

from __future__ import annotations

import html

from sqlalchemy import update

from pigeon.email.models import OutboxEmail
from pigeon.email.outbox import queue_email
from tests.support.people import PASSWORD, dm, send
from tests.web.support import browser, post_form, sign_in, signed_in


async def test_an_admin_deletes_an_account_from_the_people_table(app, client, people) -> None:
    conv = await dm(client, people.priv, people.free)
    assert (await send(client, people.free, conv["id"], "kept for the record")).status_code == 201
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert f'href="/admin/users/{people.free.id}/delete"' in page
        assert f'href="/admin/users/{people.admin.id}/delete"' not in page  # not oneself
        confirm = await c.get(f"/admin/users/{people.free.id}/delete")
        assert confirm.status_code == 200 and "@free" in confirm.text
        assert "Their messages" in confirm.text and 'name="messages" value="remove"' in confirm.text
        # the choice about their messages is required
        url = f"/admin/users/{people.free.id}/delete"
        r = await post_form(c, url, url, {})
        assert r.status_code == 422 and "Choose what happens to their messages." in r.text
        r = await post_form(c, url, url, {"messages": "keep"})
        assert r.status_code == 303 and r.headers["location"].startswith(
            "/admin?notice=user_deleted"
        )
        after = await c.get(r.headers["location"])
        assert "Account deleted." in after.text
        assert f'id="user-{people.free.id}"' not in after.text  # tombstones are not listed
        audit = html.unescape(after.text)
        assert "deleted" in audit and "free" in audit
    # the API's list agrees, and the account cannot sign in
    r = await client.get("/api/v1/admin/users", headers=people.admin.headers)
    assert people.free.id not in [u["id"] for u in r.json()]
    r = await client.post("/api/v1/auth/login", json={"login": "free", "password": PASSWORD})
    assert r.status_code == 401
    # their message stays, from "Deleted member"
    r = await client.get(
        f"/api/v1/conversations/{conv['id']}/messages", headers=people.priv.headers
    )
    assert [m["body"] for m in r.json()] == ["kept for the record"]


async def test_only_admins_reach_the_delete_page(app, people) -> None:
    async with signed_in(app, "manager") as c:
        r = await c.get(f"/admin/users/{people.free.id}/delete")
        assert r.status_code == 403
    async with signed_in(app, "admin") as c:
        assert (await c.get("/admin/users/999999/delete")).status_code == 404
        # the service's rule, shown in the page: an admin deletes their own account elsewhere
        url = f"/admin/users/{people.admin.id}/delete"
        r = await post_form(c, url, url, {"messages": "keep"})
        assert r.status_code == 403
        assert "Delete your own account from your profile" in html.unescape(r.text)


async def test_the_admin_page_shows_dead_email_and_sends_it_again(app, people) -> None:
    rt = app.state.runtime
    async with rt.uow_scope() as uow:
        row = await queue_email(
            uow, "reader@example.com", "test", {}, kind="test", settings=rt.settings
        )
        await queue_email(uow, "other@example.com", "test", {}, kind="test", settings=rt.settings)
    async with rt.dbs.app.write() as session:
        await session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == row.id)
            .values(dead_at=rt.clock.now(), attempts=8, last_error="SMTP 550: no such mailbox")
        )
    async with signed_in(app, "admin") as c:
        page = (await c.get("/admin")).text
        assert "<strong>1</strong> waiting to be sent · <strong>1</strong> given up on" in page
        assert "SMTP 550: no such mailbox" in page and "reader@example.com" in page
        url = f"/admin/email/{row.id}/retry"
        r = await post_form(c, "/admin", url, {})
        assert r.status_code == 303
        page = (await c.get(r.headers["location"])).text
        assert "The email is due again" in page
        assert "<strong>2</strong> waiting to be sent · <strong>0</strong> given up on" in page
        # sending again what is not dead is refused in the page, with the reason
        r = await post_form(c, "/admin", url, {})
        assert r.status_code == 409 and "Only a dead email can be retried" in r.text
    async with browser(app) as c:
        await sign_in(c, "manager")
        assert (await c.get("/admin")).status_code == 403
