"""An admin cannot demote or disable themselves, and the server never loses its last admin,
whichever way the change is asked for: the users API, the admin API, the admin page."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.conftest import POSTGRES_URL
from tests.support import pg
from tests.web.support import post_form, signed_in

API = "/api/v1"


async def admins(client, people) -> list[str]:  # type: ignore[no-untyped-def]
    r = await client.get(f"{API}/admin/users", headers=people.admin.headers)
    return sorted(u["username"] for u in r.json() if u["role"] == "admin" and u["is_active"])


async def test_an_admin_cannot_demote_themselves_through_any_endpoint(app, client, people) -> None:
    me = people.admin
    r = await client.put(f"{API}/users/{me.id}", json={"role": "member"}, headers=me.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "cannot_change_self"
    r = await client.patch(
        f"{API}/admin/users/{me.id}", json={"role": "manager"}, headers=me.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "cannot_change_self"
    r = await client.patch(
        f"{API}/admin/users/{me.id}", json={"is_active": False}, headers=me.headers
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "cannot_change_self"
    async with signed_in(app, "admin") as c:
        r = await post_form(
            c, "/admin", f"/admin/users/{me.id}", {"tier": "free", "role": "member"}
        )
        assert r.status_code == 403 and "You cannot demote or disable yourself." in r.text
    assert await admins(client, people) == ["admin"]
    # a profile change of one's own still works through the same endpoint
    r = await client.put(f"{API}/users/{me.id}", json={"bio": "Runs the shop"}, headers=me.headers)
    assert r.status_code == 200 and r.json()["bio"] == "Runs the shop"


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(client, people) -> None:
    r = await client.patch(
        f"{API}/admin/users/{people.manager.id}",
        json={"role": "admin"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    answers = await asyncio.gather(
        client.patch(
            f"{API}/admin/users/{people.manager.id}",
            json={"role": "member"},
            headers=people.admin.headers,
        ),
        client.patch(
            f"{API}/admin/users/{people.admin.id}",
            json={"role": "member"},
            headers=people.manager.headers,
        ),
    )
    codes = sorted(r.status_code for r in answers)
    assert all(c < 500 for c in codes), [r.text for r in answers]
    assert codes[0] == 200 and codes[1] in (403, 409), [r.text for r in answers]
    left = await client.get(f"{API}/admin/users", headers=people.admin.headers)
    if left.status_code == 403:  # the admin was the one demoted
        left = await client.get(f"{API}/admin/users", headers=people.manager.headers)
    assert [u["username"] for u in left.json() if u["role"] == "admin"] in (["admin"], ["manager"])


async def _waiting_on_locks(conn: asyncpg.Connection, count: int) -> bool:
    for _ in range(250):
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return True
        await asyncio.sleep(0.02)
    return False


@contextlib.asynccontextmanager
async def _two_admins_and_a_holder(  # type: ignore[no-untyped-def]
    backend, postgres_dbs, client, people, why: str
) -> AsyncIterator[tuple[asyncpg.Connection, Any]]:
    """On PostgreSQL only: the manager made a second admin, and a connection of the test's own
    with a transaction open, to hold rows with (closed on leaving)."""
    if backend != "postgres":
        pytest.skip(why)
    r = await client.patch(
        f"{API}/admin/users/{people.manager.id}",
        json={"role": "admin"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    assert POSTGRES_URL is not None
    holder = await asyncpg.connect(pg.dsn(POSTGRES_URL, postgres_dbs[0]))
    try:
        held = holder.transaction()
        await held.start()
        yield holder, held
    finally:
        await holder.close()


async def test_two_demotions_held_up_together_neither_deadlock_nor_leave_no_admin(
    backend, postgres_dbs, client, people
) -> None:  # type: ignore[no-untyped-def]
    """Both demotions are made to wait at once behind a third transaction holding the admin's
    row, then let go together: the interleaving that deadlocked when each wrote its own
    change before locking the other admins (one answered 500)."""
    async with _two_admins_and_a_holder(
        backend,
        postgres_dbs,
        client,
        people,
        "SQLite takes one writer at a time: there is no interleaving to force",
    ) as (holder, held):
        await holder.execute('SELECT 1 FROM "user" WHERE id = $1 FOR UPDATE', people.admin.id)
        answers = []
        # the manager demotes the admin first, then the admin the manager: the order in which
        # writing before locking deadlocked
        for target, actor in ((people.admin, people.manager), (people.manager, people.admin)):
            answers.append(
                asyncio.create_task(
                    client.patch(
                        f"{API}/admin/users/{target.id}",
                        json={"role": "member"},
                        headers=actor.headers,
                    )
                )
            )
            assert await _waiting_on_locks(holder, len(answers))
        await held.commit()
        done = await asyncio.gather(*answers)
    codes = sorted(r.status_code for r in done)
    assert codes == [200, 409], [r.text for r in done]
    assert [r.json()["error"]["code"] for r in done if r.status_code == 409] == ["last_admin"]


async def test_a_deadlock_the_database_breaks_is_answered_try_again_and_writes_nothing(
    backend, postgres_dbs, client, people
) -> None:  # type: ignore[no-untyped-def]
    """Another transaction holds the second admin's row and then asks for the first's, which
    the demotion holds while it waits: PostgreSQL breaks the cycle by failing the demotion.
    The admin gets 503 `try_again` with Retry-After, not a 500; nothing was written, and the
    same request afterwards goes through."""
    async with _two_admins_and_a_holder(
        backend,
        postgres_dbs,
        client,
        people,
        "SQLite takes one writer at a time: there is no lock cycle to make",
    ) as (holder, held):
        # the holder waits long before it looks for a cycle, so the demotion is the one broken
        await holder.execute("SET LOCAL deadlock_timeout = '30s'")
        await holder.execute('SELECT 1 FROM "user" WHERE id = $1 FOR UPDATE', people.manager.id)
        demotion = asyncio.create_task(
            client.patch(
                f"{API}/admin/users/{people.manager.id}",
                json={"role": "member"},
                headers=people.admin.headers,
            )
        )
        assert await _waiting_on_locks(holder, 1)  # it holds the admin's row, waits for ours
        await holder.execute('SELECT 1 FROM "user" WHERE id = $1 FOR UPDATE', people.admin.id)
        r = await demotion
        await held.rollback()
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "try_again"
    assert r.headers["Retry-After"] == "1"
    assert await admins(client, people) == ["admin", "manager"]
    r = await client.patch(
        f"{API}/admin/users/{people.manager.id}",
        json={"role": "member"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200, r.text
    assert await admins(client, people) == ["admin"]
