"""PostgreSQL's pool: a connection the server dropped while it sat idle, or closed (a restart,
a terminated backend), is replaced before a request uses it. It is checked only after an idle
spell or a loss: a check before every use would cost more round trips than a send's own
statements (the figure is `benchmarks/cluster.py sends`). What was under way when its
connection was lost, or finds the server unreachable, answers 503 `database_unavailable`,
and may be sent again: a send is kept once."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from pigeon.core.db import Database, DatabaseUnavailable
from tests.conftest import POSTGRES_URL
from tests.support import pg
from tests.support.people import dm


@pytest.fixture
def app_url(postgres_dbs: tuple[str, str] | None) -> str:
    if postgres_dbs is None or POSTGRES_URL is None:
        pytest.skip("PIGEON_TEST_POSTGRES_URL is not set")
    return pg.async_url(POSTGRES_URL, postgres_dbs[0])


async def _backend(db: Database) -> int:
    async with db.read() as session:
        return int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _drop(pid: int) -> None:
    assert POSTGRES_URL is not None
    admin = await asyncpg.connect(pg.dsn(POSTGRES_URL))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await admin.close()


async def test_a_connection_dropped_while_idle_is_replaced(app_url: str) -> None:
    db = Database(app_url, name="app", pool_size=1, max_overflow=0, ping_after=0.2)
    try:
        first = await _backend(db)
        await _drop(first)  # the server (or a network in between) ends it while it is pooled
        await asyncio.sleep(0.3)
        second = await _backend(db)  # no error reaches the caller
        assert second != first
        assert await _backend(db) == second  # and the new one is kept
    finally:
        await db.dispose()


async def _backends(names: list[str], **where: str) -> list[int]:
    """The server's processes serving these databases (`where`: columns of pg_stat_activity
    to match, such as wait_event_type)."""
    assert POSTGRES_URL is not None
    admin = await asyncpg.connect(pg.dsn(POSTGRES_URL))
    try:
        sql = "SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[])"
        for i, column in enumerate(where, start=2):
            sql += f" AND {column} = ${i}"
        return [r["pid"] for r in await admin.fetch(sql, names, *where.values())]
    finally:
        await admin.close()


async def _end_all(names: list[str]) -> None:
    """What a restart does to every connection to these databases: ended by the server."""
    pids = await _backends(names)
    for pid in pids:
        await _drop(pid)
    while set(pids) & set(await _backends(names)):  # gone, and their sockets closed
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)  # the event loop reads each one's end


async def test_connections_the_server_closed_are_replaced_before_a_request_uses_them(
    backend: str, client: Any, people: Any, postgres_dbs: tuple[str, str] | None
) -> None:
    """Every pooled connection ended at once, as a restart ends them, between two requests:
    the next ones, reads and a send, are answered as if nothing happened."""
    if backend != "postgres" or postgres_dbs is None:
        pytest.skip("PostgreSQL's own connections")
    conv = await dm(client, people.priv, people.free)
    url = f"/api/v1/conversations/{conv['id']}/messages"
    h = people.priv.headers
    for _ in range(2):
        assert (await client.get("/api/v1/conversations", headers=h)).status_code == 200
        await _end_all(list(postgres_dbs))
        assert (await client.get("/api/v1/conversations", headers=h)).status_code == 200
        assert (await client.get(url, headers=h)).status_code == 200
        r = await client.post(
            url, json={"body": "after", "client_msg_id": str(uuid.uuid4())}, headers=h
        )
        assert r.status_code == 201


async def test_a_send_whose_connection_is_lost_says_so_and_is_kept_once_when_sent_again(
    backend: str, client: Any, people: Any, postgres_dbs: tuple[str, str] | None
) -> None:
    """The server ends the connection of a send under way (a restart, a failover): the sender
    is told, with a 503 and Retry-After, not a 500; sending it again (the same client_msg_id)
    keeps it once, and nothing else was disturbed."""
    if backend != "postgres" or postgres_dbs is None or POSTGRES_URL is None:
        pytest.skip("PostgreSQL's own connections")
    conv = await dm(client, people.priv, people.free)
    url = f"/api/v1/conversations/{conv['id']}/messages"
    h = people.priv.headers
    payload = {"body": "cut off", "client_msg_id": str(uuid.uuid4())}
    # hold the conversation, so that the send waits on it, under way, when its connection ends
    holder = await asyncpg.connect(pg.dsn(POSTGRES_URL, postgres_dbs[1]))
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT id FROM conversation WHERE id = $1 FOR UPDATE", conv["id"])
        sending = asyncio.ensure_future(client.post(url, json=payload, headers=h))
        waiting: list[int] = []
        while not waiting:
            await asyncio.sleep(0.02)
            waiting = await _backends([postgres_dbs[1]], wait_event_type="Lock")
        await _drop(waiting[0])
        r = await sending
        await tx.rollback()
    finally:
        await holder.close()
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "database_unavailable"
    assert r.headers["retry-after"] == "1"
    again = await client.post(url, json=payload, headers=h)
    assert again.status_code == 201
    assert (await client.post(url, json=payload, headers=h)).json()["id"] == again.json()["id"]
    page = (await client.get(url, headers=people.free.headers)).json()
    assert [m["body"] for m in page] == ["cut off"]


async def test_a_server_that_cannot_be_reached_says_so(app_url: str) -> None:
    """Nothing listens where the database should be: a 503 that says so (and the driver's
    own words for the log), not an error of the statement."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # a port nobody listens on
        port = s.getsockname()[1]
        db = Database(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/x", name="app")
        try:
            with pytest.raises(DatabaseUnavailable) as caught:
                await db.run_read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        finally:
            await db.dispose()
    assert caught.value.status == 503 and caught.value.headers == {"Retry-After": "1"}
    assert "refused" in str(caught.value) or "failed" in str(caught.value)


async def test_a_new_connection_knows_the_send_paths_array_types_before_any_send(
    app_url: str,
) -> None:
    """The send's write passes and returns `integer[]` and `bigint[]`. asyncpg learns how to
    read them by querying the catalog (milliseconds of the server's time), once a connection:
    done in the middle of a send, that query held the send's place in the message stream and
    with it every process's deliveries. Each connection learns them as it is made."""
    db = Database(app_url, name="messaging", pool_size=1, max_overflow=0)
    try:
        async with db.write_engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            asked: list[str] = []
            driver.add_query_logger(lambda record: asked.append(record.query))
            row = await driver.fetchrow(
                "SELECT CAST($1 AS integer[]) AS ids, CAST($2 AS bigint[]) AS totals", [3, 4], [5]
            )
            assert (row["ids"], row["totals"]) == ([3, 4], [5])
            assert [q for q in asked if "pg_catalog" in q or "typeinfo" in q] == []
    finally:
        await db.dispose()
