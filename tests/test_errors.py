"""Bad input of every kind gets the envelope with a fitting status; never a 500."""

import pytest

API = "/api/v1"


def assert_envelope(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert body["error"]["message"]
    if code:
        assert body["error"]["code"] == code


async def test_unknown_routes_and_methods(client):
    assert_envelope(await client.get(f"{API}/nothing/here"), 404, "not_found")
    page = await client.get("/nowhere")  # outside the API a browser gets a page, still a 404
    assert page.status_code == 404
    assert_envelope(await client.delete(f"{API}/auth/login"), 405, "method_not_allowed")


async def test_malformed_and_wrong_bodies(client, people):
    h = {**people.priv.headers, "content-type": "application/json"}
    assert_envelope(
        await client.post(f"{API}/conversations", content=b"{nope", headers=h),
        400,
        "malformed_json",
    )
    assert_envelope(
        await client.post(f"{API}/conversations", content=b"\xff\xfe", headers=h),
        400,
        "malformed_json",
    )
    r = await client.post(f"{API}/conversations", json=[1, 2], headers=people.priv.headers)
    assert_envelope(r, 422, "validation_error")
    r = await client.post(
        f"{API}/conversations", json={"participant_ids": "5"}, headers=people.priv.headers
    )
    assert_envelope(r, 422, "validation_error")
    assert "participant_ids" in r.json()["error"]["fields"]
    r = await client.post(
        f"{API}/conversations", json={"participant_ids": [2**40]}, headers=people.priv.headers
    )
    assert_envelope(r, 422, "validation_error")
    r = await client.post(
        f"{API}/conversations", json={"participant_ids": [99999]}, headers=people.priv.headers
    )
    assert_envelope(r, 404, "user_not_found")
    r = await client.post(
        f"{API}/auth/login",
        content=b"login=x&password=y",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code in (400, 422) and "error" in r.json()


async def test_oversized_chunked_body_is_refused(client, people):
    async def chunks():
        for _ in range(30):
            yield b"x" * 100_000  # 3 MB with no Content-Length to go by

    r = await client.post(
        f"{API}/conversations/1/messages",
        content=chunks(),
        headers={**people.priv.headers, "content-type": "application/json"},
    )
    assert_envelope(r, 413, "too_large")


async def test_oversized_body_is_refused(client, people):
    r = await client.post(
        f"{API}/conversations/1/messages",
        content=b"x" * 2_000_001,
        headers={**people.priv.headers, "content-type": "application/json"},
    )
    assert_envelope(r, 413, "too_large")


@pytest.mark.parametrize(
    "path",
    [
        "/conversations/0",
        "/conversations/-1",
        "/conversations/abc",
        "/conversations/99999999999999999999",
        "/users/2147483648",
        "/conversations/1/messages?limit=0",
        "/conversations/1/messages?before_id=x",
        "/conversations?before=yesterday",
    ],
)
async def test_bad_path_and_query_values(client, people, path):
    r = await client.get(f"{API}{path}", headers=people.priv.headers)
    assert_envelope(r, 422, "validation_error")


async def test_unauthenticated(client):
    assert_envelope(await client.get(f"{API}/conversations"), 401, "not_authenticated")
    assert_envelope(await client.get(f"{API}/admin/users"), 401)


async def test_unicode_and_odd_strings_never_break_search(client, people):
    for q in ("%", "_", "'; DROP TABLE user; --", "\u0000", "🐦" * 30, "\\"):
        r = await client.get(f"{API}/users/search", params={"q": q}, headers=people.priv.headers)
        assert r.status_code in (200, 422), (q, r.text)


async def test_nul_bytes_are_refused_not_crashing(client, people):
    r = await client.post(f"{API}/auth/login", json={"login": "a\u0000b", "password": "x"})
    assert_envelope(r, 422, "validation_error")
    r = await client.get(f"{API}/admin/users", params={"q": "\u0000"}, headers=people.admin.headers)
    assert_envelope(r, 422, "validation_error")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # no database is asked
async def test_a_background_job_logs_an_outage_in_a_line_and_a_fault_with_its_traceback(
    app, caplog
):
    """A job that meets the database out of reach says so in one line each run (an outage
    is not a fault, and a traceback a second would bury the log); a bug in it keeps its
    traceback."""
    import asyncio
    import logging

    from pigeon.core.background import Periodic
    from pigeon.core.db import DatabaseUnavailable

    failures = [DatabaseUnavailable("connection lost: the server restarted"), RuntimeError("a bug")]

    class Job(Periodic):
        name = "probe"

        def interval(self) -> float:
            return 0.01

        async def run_once(self, holder: str) -> bool:
            raise failures.pop(0) if failures else asyncio.CancelledError()

    job = Job(app.state.runtime)
    with caplog.at_level(logging.WARNING, logger="pigeon.background"):
        job.start()
        while failures:
            await asyncio.sleep(0.01)
        await job.stop()
    said = [
        (r.getMessage(), r.exc_info is not None)
        for r in caplog.records
        if r.name == "pigeon.background"
    ]
    assert said == [
        ("probe run failed: connection lost: the server restarted", False),
        ("probe run failed", True),
    ]


async def test_redis_out_of_reach_is_logged_in_a_line_not_as_a_fault(caplog):
    """Every socket that closes while Redis restarts has its presence fail: one line each,
    with Redis's words, not a traceback each (fifty thousand of them would bury the log)."""
    import logging
    import socket

    import redis.asyncio as aioredis

    from pigeon.core.errors import log_failure

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gone = aioredis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    logger = logging.getLogger("pigeon.realtime")
    with caplog.at_level(logging.WARNING, logger="pigeon.realtime"):
        try:
            await gone.smembers("presence")
        except Exception:
            log_failure(logger, "presence (offline) failed")
        try:
            raise RuntimeError("a bug")
        except Exception:
            log_failure(logger, "presence (offline) failed")
    await gone.aclose()
    said = [(r.getMessage(), r.exc_info is not None) for r in caplog.records]
    assert len(said) == 2
    assert said[0][0].startswith("presence (offline) failed: ") and str(port) in said[0][0]
    assert not said[0][1]
    assert said[1] == ("presence (offline) failed", True)
