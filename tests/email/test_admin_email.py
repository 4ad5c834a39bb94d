"""The outbox's admin endpoints: admins only, clear errors for bad input."""

from __future__ import annotations

from pigeon.email.outbox import queue_email


async def test_only_admins_see_or_retry_the_outbox(app, client, people) -> None:
    rt = app.state.runtime
    async with rt.uow_scope() as uow:
        row = await queue_email(
            uow, "reader@example.com", "test", {}, kind="test", settings=rt.settings
        )
    for who in (people.manager, people.plus, people.free):
        r = await client.get("/api/v1/admin/email?state=pending", headers=who.headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
        r = await client.post(f"/api/v1/admin/email/{row.id}/retry", headers=who.headers)
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_only"
    assert (await client.get("/api/v1/admin/email")).status_code == 401

    r = await client.get("/api/v1/admin/email", headers=people.admin.headers)
    assert [e["id"] for e in r.json()] == [row.id]


async def test_bad_input_gets_the_error_envelope(client, people) -> None:
    admin = people.admin.headers
    r = await client.get("/api/v1/admin/email?state=lost", headers=admin)
    assert r.status_code == 422 and "state" in r.json()["error"]["fields"]
    r = await client.post("/api/v1/admin/email/999/retry", headers=admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "email_not_found"
    r = await client.post("/api/v1/admin/email/0/retry", headers=admin)
    assert r.status_code == 422
    r = await client.post("/api/v1/admin/email/99999999999999999999/retry", headers=admin)
    assert r.status_code == 422
