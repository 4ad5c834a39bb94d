"""History with a million messages stored, beside the reference server holding as many.

Fills Pigeon's embedded default with 1,000,000 messages across 10,000 direct conversations
among 200 members (100 messages each, written interleaved in time as real traffic is, so a
conversation's messages are spread over the whole table), and the reference server's table
with the same rows. Then, with the server on one core and `wrk` or the client on the other:

  - the latest 50 messages of a conversation, Pigeon against the reference (p50 with one
    connection, and server CPU per page);
  - the conversation list (first page, 20) of a member in 199 conversations;
  - catch-up: a WebSocket `resume` from 200 messages back for that member, to the last frame.

    .venv/bin/python benchmarks/history_1m.py [--messages 1000000] [--conversations 10000]
        [--server-cpu 0 --client-cpu 1] [--reference-dir ../shared/bench] [--keep DIR]

Filling takes a minute or two; `--keep DIR` keeps (and reuses) the filled databases.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pigeon.bench.clients import RawHTTP  # noqa: E402
from pigeon.bench.reference import DEFAULT_REFERENCE, REFERENCE_HISTORY, wrk  # noqa: E402
from pigeon.bench.server import (  # noqa: E402
    ServerProbe,
    free_port,
    prepare,
    start_server,
    wait_ready,
)

MEMBERS = 200
BODY = "a message of an ordinary length, about as long as people write them: {}"


def fill_pigeon(data: Path, messages: int, conversations: int) -> None:
    """The prepared members' direct conversations, then the messages, written as the send
    writes them: each conversation's last message and each member's read state and counts."""
    db = sqlite3.connect(data / "messages.db")
    db.execute("PRAGMA synchronous=OFF")
    keys = {k for (k,) in db.execute("SELECT direct_key FROM conversation")}
    span = dt.timedelta(seconds=messages + 3600)  # one a second, ending an hour ago
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - span
    stamp = now.isoformat(" ")
    pairs = (
        (a, b)
        for a, b in itertools.combinations(range(1, MEMBERS + 1), 2)
        if f"{a}:{b}" not in keys
    )
    for a, b in itertools.islice(pairs, conversations - len(keys)):
        cid = db.execute(
            "INSERT INTO conversation (kind, created_by, direct_key, created_at, updated_at)"
            " VALUES ('direct', ?, ?, ?, ?)",
            (a, f"{a}:{b}", stamp, stamp),
        ).lastrowid
        for uid, role in ((a, "owner"), (b, "member")):
            db.execute(
                "INSERT INTO participant (conversation_id, user_id, role, display_name,"
                " joined_at, last_read_message_id, unread_count) VALUES (?, ?, ?, ?, ?, 0, 0)",
                (cid, uid, role, f"bench{uid - 1}", stamp),
            )
    db.execute("UPDATE participant SET request_pending = 0")
    convs = db.execute("SELECT id, created_by FROM conversation ORDER BY id").fetchall()
    others = dict(
        db.execute("SELECT conversation_id, user_id FROM participant WHERE role = 'member'")
    )
    per = messages // len(convs)
    rows = (
        (
            cid,
            a if n % 2 == 0 else others[cid],
            BODY.format(n),
            (now + dt.timedelta(seconds=n * len(convs) + i)).isoformat(" "),
        )
        for n in range(per)
        for i, (cid, a) in enumerate(convs)
    )
    while batch := list(itertools.islice(rows, 50_000)):
        db.executemany(
            "INSERT INTO message (conversation_id, sender_id, body, created_at)"
            " VALUES (?, ?, ?, ?)",
            batch,
        )
    db.execute(
        "UPDATE conversation SET last_message_id = (SELECT max(id) FROM message m"
        " WHERE m.conversation_id = conversation.id), updated_at = (SELECT max(created_at)"
        " FROM message m WHERE m.conversation_id = conversation.id)"
    )
    # each has read up to the tenth-last message of each conversation: ten unread
    db.execute(
        "UPDATE participant SET unread_count = 10, last_read_message_id = (SELECT id FROM"
        " message m WHERE m.conversation_id = participant.conversation_id ORDER BY id DESC"
        " LIMIT 1 OFFSET 10)"
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def fill_reference(path: Path, messages: int, conversations: int) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, conv TEXT NOT NULL,"
        " sender TEXT NOT NULL, body TEXT NOT NULL, ts REAL NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS messages_conv_id ON messages(conv, id)")
    per = messages // conversations
    rows = (
        ("wrk|peer" if i == 0 else f"c{i}", "someone", BODY.format(n), float(n))
        for n in range(per)
        for i in range(conversations)
    )
    while batch := list(itertools.islice(rows, 50_000)):
        db.executemany("INSERT INTO messages (conv, sender, body, ts) VALUES (?, ?, ?, ?)", batch)
    db.commit()
    db.close()


async def catch_up(port: int, token: str, after: int, expected: int) -> float:
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://127.0.0.1:{port}/api/v1/ws?token={token}", compression=None, max_queue=None
    ) as ws:
        await ws.recv()  # hello
        started = time.perf_counter()
        await ws.send(orjson.dumps({"type": "resume", "last_message_id": after}).decode())
        seen = 0
        async with asyncio.timeout(60):
            while seen < expected:
                frame = orjson.loads(await ws.recv())
                if frame["type"] == "message.new":
                    seen += 1
                elif frame["type"] == "resume.truncated":
                    raise RuntimeError("the resume was truncated")
        return (time.perf_counter() - started) * 1000


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--conversations", type=int, default=10_000)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--reference-dir", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    args.history_seconds = args.seconds
    root = args.keep or Path(tempfile.mkdtemp(prefix="pigeon-1m-"))
    data, ref_db = root / "data", root / "reference.db"
    tokens_file = root / "tokens.json"
    try:
        if not tokens_file.exists():
            started = time.perf_counter()
            ids, tokens, _ = await prepare(data, MEMBERS, MEMBERS // 2)
            fill_pigeon(data, args.messages, args.conversations)
            fill_reference(ref_db, args.messages, args.conversations)
            tokens_file.write_bytes(
                orjson.dumps({str(i): t for i, t in zip(ids, tokens, strict=True)})
            )
            print(f"filled in {time.perf_counter() - started:.0f} s", flush=True)
        tokens_by_id = {int(k): v for k, v in orjson.loads(tokens_file.read_bytes()).items()}
        db = sqlite3.connect(data / "messages.db")
        stored = db.execute("SELECT count(*) FROM message").fetchone()[0]
        conv = db.execute("SELECT id, created_by FROM conversation ORDER BY id LIMIT 1 OFFSET 5000")
        conv_id, owner = conv.fetchone()
        member = 1
        mine = db.execute(
            "SELECT m.id FROM message m JOIN participant p ON p.conversation_id ="
            " m.conversation_id WHERE p.user_id = ? ORDER BY m.id DESC LIMIT 1 OFFSET 200",
            (member,),
        ).fetchone()[0]
        in_convs = db.execute(
            "SELECT count(*) FROM participant WHERE user_id = ?", (member,)
        ).fetchone()[0]
        db.close()
        print(f"{stored:,} messages in {args.conversations:,} conversations", flush=True)

        # the reference
        port = free_port()
        cmd = [
            "taskset", "-c", args.server_cpu, sys.executable, "-m", "uvicorn",
            "--app-dir", str(args.reference_dir), "reference_server:app",
            "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
        server = subprocess.Popen(cmd, env={**os.environ, "REFERENCE_DB": str(ref_db)})
        try:
            for _ in range(100):
                try:
                    (await RawHTTP.open(port)).close()
                    break
                except OSError:
                    await asyncio.sleep(0.1)
            probe = ServerProbe(server.pid)
            base = f"http://127.0.0.1:{port}"
            ref = await wrk(base, REFERENCE_HISTORY, 1, args.seconds, args.client_cpu, probe)
        finally:
            server.terminate()
            server.wait(timeout=10)

        # Pigeon
        port = free_port()
        server = start_server(data, port, args.server_cpu)
        try:
            await wait_ready(port, server)
            probe = ServerProbe(server.pid)
            base = f"http://127.0.0.1:{port}"
            token = tokens_by_id[owner]
            history = (
                f'wrk.method = "GET"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
                f'wrk.path = "/api/v1/conversations/{conv_id}/messages?limit=50"\n'
            )
            listing = (
                f'wrk.method = "GET"\nwrk.headers["Authorization"] = '
                f'"Bearer {tokens_by_id[member]}"\nwrk.path = "/api/v1/conversations?limit=20"\n'
            )
            page = await wrk(base, history, 1, args.seconds, args.client_cpu, probe)
            convs = await wrk(base, listing, 1, args.seconds, args.client_cpu, probe)
            resumes = [await catch_up(port, tokens_by_id[member], mine, 200) for _ in range(20)]
        finally:
            server.terminate()
            server.wait(timeout=10)

        print(
            f"latest 50: reference p50 {ref.p50_ms:.2f} ms ({ref.cpu_ms:.3f} ms CPU/page); "
            f"pigeon p50 {page.p50_ms:.2f} ms ({page.cpu_ms:.3f} ms CPU/page); "
            f"ratio {page.p50_ms / ref.p50_ms:.2f}; non-2xx {page.non_2xx}"
        )
        print(
            f"conversation list (20 of {in_convs}): p50 {convs.p50_ms:.2f} ms, "
            f"p99 {convs.p99_ms:.2f} ms ({convs.cpu_ms:.3f} ms CPU); non-2xx {convs.non_2xx}"
        )
        print(
            f"catch-up of 200 messages over a WebSocket resume: median "
            f"{statistics.median(resumes):.1f} ms (min {min(resumes):.1f}, max {max(resumes):.1f})"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
