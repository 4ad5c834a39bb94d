"""Retention by tier: who sees what as the clock moves, and what the job removes when."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select

from pigeon.core.clock import Clock
from pigeon.core.errors import Conflict
from pigeon.core.leases import acquire_lease
from pigeon.messaging import retention
from pigeon.messaging.models import Message
from tests.safety.conftest import travel
from tests.support.people import Person, dm, send
from tests.support.plans import reads_of_messages, whole_table_reads

API = "/api/v1"


@pytest.fixture(autouse=True)
def frozen(clock: Clock) -> None:
    clock.freeze()


async def bodies(client: Any, who: Person, conv_id: int) -> list[str]:
    r = await client.get(f"{API}/conversations/{conv_id}/messages", headers=who.headers)
    assert r.status_code == 200, r.text
    return [m["body"] for m in r.json() if not m["deleted"]]


async def stored(app: Any) -> int:
    async with app.state.runtime.dbs.messaging.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


def now(app: Any) -> dt.datetime:
    return app.state.runtime.clock.now()  # type: ignore[no-any-return]


async def run(app: Any, **kw: Any) -> retention.RunResult:
    return await retention.run_exclusive(app.state.runtime, **kw)


async def test_each_participant_sees_their_own_window(app, client, people):
    conv = await dm(client, people.plus, people.free)
    await send(client, people.plus, conv["id"], "old")
    travel(app, people, days=40)
    await send(client, people.plus, conv["id"], "new")

    assert await bodies(client, people.plus, conv["id"]) == ["old", "new"]
    assert await bodies(client, people.free, conv["id"]) == ["new"]
    views = {
        who.username: (
            await client.get(f"{API}/conversations/{conv['id']}", headers=who.headers)
        ).json()
        for who in (people.plus, people.free)
    }
    assert views["free"]["retention_days"] == 30 and views["plus"]["retention_days"] == 365

    # the job leaves it alone: the privileged_plus participant may still see it
    result = await run(app)
    assert result.soft_deleted == 0
    assert await bodies(client, people.plus, conv["id"]) == ["old", "new"]


async def test_the_job_removes_what_left_every_window_then_purges_it(app, client, people):
    plus_free = await dm(client, people.plus, people.free)
    priv_free = await dm(client, people.priv, people.free)
    group = (
        await client.post(
            f"{API}/groups",
            headers=people.priv.headers,
            json={"title": "Club", "member_ids": [people.free.id, people.free2.id]},
        )
    ).json()
    await send(client, people.plus, plus_free["id"], "a")
    await send(client, people.priv, priv_free["id"], "b")
    await send(client, people.free, group["id"], "c")
    travel(app, people, days=100)
    await send(client, people.priv, priv_free["id"], "b2")
    assert await stored(app) == 4

    travel(app, people, days=81)  # 181 days: past the privileged window, inside plus
    assert (await client.get(f"{API}/unread", headers=people.free.headers)).json()["total"] == 3
    result = await run(app)
    assert (result.soft_deleted, result.purged) == (2, 0)
    assert await bodies(client, people.plus, plus_free["id"]) == ["a"]
    assert await bodies(client, people.priv, priv_free["id"]) == ["b2"]
    assert await bodies(client, people.priv, group["id"]) == []
    assert await stored(app) == 4  # soft-deleted, kept for the grace period
    # the free member's badges no longer count what is outside their 30 days
    unread = (await client.get(f"{API}/unread", headers=people.free.headers)).json()
    assert unread["total"] == 0
    unread = (await client.get(f"{API}/unread", headers=people.priv.headers)).json()
    assert unread["conversations"] == {}  # priv sent everything priv could have unread

    travel(app, people, days=6)
    assert (await run(app)).purged == 0
    travel(app, people, days=2)
    result = await run(app)
    assert (result.soft_deleted, result.purged) == (0, 2)
    assert await stored(app) == 2

    travel(app, people, days=366 - 189)
    # "a" left the longest window too; "b2" (266 days) left the privileged one
    assert (await run(app)).soft_deleted == 2
    assert await bodies(client, people.plus, plus_free["id"]) == []
    travel(app, people, days=8)
    assert (await run(app)).purged == 2
    assert await stored(app) == 0


async def test_nothing_under_an_open_report_is_lost(app, client, people):
    conv = await dm(client, people.priv, people.free)
    msg = (await send(client, people.priv, conv["id"], "evidence")).json()
    r = await client.post(
        f"{API}/messages/{msg['id']}/report",
        json={"reason": "harassment"},
        headers=people.free.headers,
    )
    rep = r.json()

    travel(app, people, days=181)
    assert (await run(app)).soft_deleted == 1
    travel(app, people, days=30)
    result = await run(app)
    assert (result.purged, result.kept_for_reports) == (0, 1)
    assert await stored(app) == 1
    r = await client.get(f"{API}/admin/reports/{rep['id']}", headers=people.admin.headers)
    assert r.json()["body"] == "evidence" and r.json()["message_state"] == "deleted"

    r = await client.post(
        f"{API}/admin/reports/{rep['id']}/resolve",
        json={"action": "dismiss"},
        headers=people.admin.headers,
    )
    assert r.status_code == 200
    assert (await run(app)).purged == 1  # deleted long ago; nothing holds it any more
    assert await stored(app) == 0
    r = await client.get(f"{API}/admin/reports/{rep['id']}", headers=people.admin.headers)
    assert r.json()["body"] == "evidence"  # the moderators' copy outlives it by the grace
    travel(app, people, days=8)
    assert (await run(app)).reports_cleared == 1
    r = await client.get(f"{API}/admin/reports/{rep['id']}", headers=people.admin.headers)
    assert r.json()["body"] == "" and r.json()["message_state"] == "removed"


async def test_the_hourly_pass_reads_messages_by_index_and_purges_in_chunks(
    app, client, people, backend, monkeypatch
):
    """On SQLite, whose planner has no statistics: finding old live messages and purging
    deleted ones read the indexes made for them, never every message. The first query of the
    pass once read the whole table, every hour, through a reader's page cache."""
    if backend != "sqlite":
        pytest.skip("PostgreSQL plans from its statistics")
    monkeypatch.setattr(retention, "CHUNK", 2)
    conv = await dm(client, people.priv, people.free)
    sent = [(await send(client, people.priv, conv["id"], f"m{i}")).json() for i in range(5)]
    r = await client.post(
        f"{API}/messages/{sent[0]['id']}/report",
        json={"reason": "harassment"},
        headers=people.free.headers,
    )
    assert r.status_code == 201, r.text
    db = app.state.runtime.dbs.messaging
    with reads_of_messages(db) as seen:
        travel(app, people, days=200)
        assert (await run(app)).soft_deleted == 5
        travel(app, people, days=8)
        result = await run(app)
    assert (result.purged, result.kept_for_reports) == (4, 1)  # two at a time
    assert await stored(app) == 1
    assert whole_table_reads(db, seen) == []


async def test_dry_run_and_as_of_change_nothing_and_are_audited(app, client, people, clock):
    conv = await dm(client, people.priv, people.free)
    await send(client, people.priv, conv["id"], "x")
    later = clock.now() + __import__("datetime").timedelta(days=200)

    result = await run(app, as_of=later, dry_run=True, actor_label="cli:ops")
    assert result.soft_deleted == 1 and result.dry_run
    assert await bodies(client, people.priv, conv["id"]) == ["x"]

    result = await run(app, as_of=later)
    assert result.soft_deleted == 1
    assert await bodies(client, people.priv, conv["id"]) == []

    r = await client.get(
        f"{API}/admin/audit", params={"action": "retention.run"}, headers=people.admin.headers
    )
    real, dry = r.json()
    assert dry["actor_label"] == "cli:ops" and dry["data"]["dry_run"] is True
    assert real["data"]["soft_deleted"] == 1 and real["data"]["as_of"] == later.isoformat()


async def test_one_process_at_a_time(app, client, people):
    rt = app.state.runtime
    assert await acquire_lease(rt.dbs.app, retention.LEASE, "another-process", 300, now=now(app))
    with pytest.raises(Conflict):
        await run(app)
    travel(app, people, seconds=301)  # its holder died: the lease runs out
    await run(app)

    # the background schedule: one run per interval, whichever process comes first
    assert await retention.scheduled_run(rt, "process-1") is not None
    assert await retention.scheduled_run(rt, "process-2") is None
    travel(app, people, seconds=rt.settings.retention_interval_seconds)
    assert await retention.scheduled_run(rt, "process-2") is not None
