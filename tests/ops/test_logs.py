"""Structured logs of a real server run: one JSON object a line, a line per request with its
id, route, status, duration and user, and nothing a member typed or a credential anywhere."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from pigeon.core.logs import JsonFormatter, RequestContext
from tests.support.serve import environment, pigeon_serve

API = "/api/v1"
DEMO_PASSWORD = "pigeon-demo"
PROBE = "PROBE-7c1e message text nobody may log"
SEARCH_PROBE = "PROBEsearch"
ENV = {
    "PIGEON_PASSWORD_HASH_TIME_COST": "1",
    "PIGEON_PASSWORD_HASH_MEMORY_KIB": "64",
    "PIGEON_TUNE_GC": "false",
    "PIGEON_LOG_FORMAT": "json",
}


def load_demo(data: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pigeon.cli", "demo"], env=environment(data, ENV), check=True
    )


def test_a_full_run_logs_json_lines_with_request_ids_and_no_secrets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    load_demo(data)
    used: list[str] = [PROBE, SEARCH_PROBE, DEMO_PASSWORD]
    with (
        (tmp_path / "server.log").open("wb") as log,
        pigeon_serve(data, ENV, log) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        r = http.post(f"{API}/auth/login", json={"login": "pete", "password": DEMO_PASSWORD})
        assert r.status_code == 200, r.text
        tokens = r.json()
        used += [tokens["access_token"], tokens["refresh_token"]]
        pete = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = http.get(f"{API}/auth/me", headers=pete).json()

        r = http.post(f"{API}/auth/login", json={"login": "pete", "password": "wrong-" + PROBE})
        assert r.status_code == 401
        convs = http.get(f"{API}/conversations", headers=pete).json()
        conv_id = convs[0]["id"]
        # a request id from a proxy is kept; a strange one is replaced
        r = http.post(
            f"{API}/conversations/{conv_id}/messages",
            json={"body": PROBE},
            headers={**pete, "X-Request-ID": "edge-42"},
        )
        assert r.status_code == 201 and r.headers["x-request-id"] == "edge-42"
        sent_id = r.json()["id"]
        r = http.get(
            f"{API}/messages/search",
            params={"q": SEARCH_PROBE},
            headers={**pete, "X-Request-ID": "bad id\twith tab"},
        )
        assert r.status_code == 200
        made = r.headers["x-request-id"]  # a bad one is replaced: 32 hex digits of its own
        assert len(made) == 32 and int(made, 16) >= 0
        r = http.post(f"{API}/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert r.status_code == 200
        used += [r.json()["access_token"], r.json()["refresh_token"]]
        ticket = http.post(f"{API}/ws/ticket", headers=pete).json()["ticket"]
        used.append(ticket)

        async def live() -> None:
            async with connect(base.replace("http", "ws") + f"{API}/ws?ticket={ticket}") as ws:
                await asyncio.wait_for(ws.recv(), 5)

        asyncio.run(live())
        r = http.get("/login")  # a page
        assert r.status_code == 200 and r.headers["x-request-id"]

    lines = (tmp_path / "server.log").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    requests = [r for r in records if r["logger"] == "pigeon.request"]
    by_id = {r["request_id"]: r for r in requests}
    assert len(by_id) == len(requests)  # each request its own id
    send_line = by_id["edge-42"]
    assert send_line["route"] == f"{API}/conversations/{{conversation_id}}/messages"
    assert send_line["method"] == "POST" and send_line["status"] == 201
    assert send_line["user_id"] == me["id"] and send_line["duration_ms"] > 0
    failed = [r for r in requests if r["route"] == f"{API}/auth/login" and r["status"] == 401]
    assert failed and "user_id" not in failed[0]
    assert any(r["route"] == f"{API}/ws" and r["method"] == "WEBSOCKET" for r in requests)
    assert any(r["route"] == "/login" for r in requests)
    for record in records:
        assert {"ts", "level", "logger", "message"} <= set(record)
    text = "\n".join(lines)
    for secret in used:
        assert secret not in text, f"{secret[:12]}… is in the log"
    assert str(sent_id) not in {r.get("route") for r in requests}


def test_a_line_carries_the_request_it_was_logged_in() -> None:
    import logging

    from pigeon.core import logs

    record = logging.LogRecord("pigeon.x", logging.WARNING, __file__, 1, "slow %s", ("db",), None)
    token = logs._request.set({"request_id": "abc", "user_id": 7})
    try:
        assert RequestContext().filter(record)
    finally:
        logs._request.reset(token)
    line: dict[str, Any] = json.loads(JsonFormatter().format(record))
    assert line["message"] == "slow db" and line["level"] == "warning"
    assert line["request_id"] == "abc" and line["user_id"] == 7


def test_a_start_says_once_what_it_did_to_each_database_and_where_each_stands(
    tmp_path: Path,
) -> None:
    """`pigeon serve` upgrades before it becomes the server: the log says what that upgrade
    changed, then the server says where each database stands, and no line comes twice."""
    data = tmp_path / "data"

    def started() -> list[str]:
        with (tmp_path / "server.log").open("wb") as log, pigeon_serve(data, ENV, log):
            pass
        lines = (tmp_path / "server.log").read_text().splitlines()
        return [json.loads(line)["message"] for line in lines if "database:" in line]

    said = started()
    assert len(said) == len(set(said)) == 3, said
    assert said[0].startswith("app database: created at ")
    assert said[1].startswith("app database: at ") and said[1].endswith(", the latest")
    assert said[2].startswith("messaging database: not created")
    said = started()  # a restart: nothing to change
    assert len(said) == 2 and said[0].startswith("app database: at "), said


def test_every_line_is_json_whichever_library_logs_it() -> None:
    """Lines from the event loop, the database libraries and Python's warnings go through the
    server's own handler: a JSON log has no line of any other form (a log shipper would drop
    it, or stop)."""
    script = (
        "import logging, logging.config, warnings\n"
        "from pigeon.server import server_log_config\n"
        "logging.config.dictConfig(server_log_config('json', 'info'))\n"
        "logging.captureWarnings(True)\n"
        "logging.getLogger('asyncio').error('Task was destroyed but it is pending!')\n"
        "logging.getLogger('sqlalchemy.pool').warning('a connection was not returned')\n"
        "logging.getLogger('sqlalchemy.engine').info('chatter below the root level')\n"
        "warnings.warn('something is deprecated')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    lines = (done.stdout + done.stderr).splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert [(r["logger"], r["level"]) for r in records] == [
        ("asyncio", "error"),
        ("sqlalchemy.pool", "warning"),
        ("py.warnings", "warning"),
    ]
    assert "something is deprecated" in records[2]["message"]
