"""Message search over many messages: the substring scan it replaced against the full-text index.

Builds a messaging database by its migrations (a temporary SQLite file, or an empty PostgreSQL
database given with --url), fills it with --messages messages over 400 conversations, of which
the reader takes part in 100, and times the query `search.search_messages` runs (the reader's
visible messages, newest 50 first) with each way of matching:

  - a common word (in about one message in ten), a rare word (one in ten thousand), and a
    two-word query whose last word is a prefix

    .venv/bin/python benchmarks/search.py [--messages 100000] [--runs 20]
    .venv/bin/python benchmarks/search.py --url postgresql+asyncpg://.../empty_db

Prints the median wall time of each query in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from typing import Any

from sqlalchemy import insert, text

from pigeon.core import migrate
from pigeon.core.db import Database
from pigeon.core.text import contains
from pigeon.messaging import fulltext
from pigeon.messaging.models import Conversation, Message, Participant
from pigeon.messaging.visibility import visible_messages

READER = 1
WORDS = [
    "book",
    "shelf",
    "novel",
    "poem",
    "story",
    "author",
    "page",
    "chapter",
    "cover",
    "reading",
    "order",
    "shop",
    "store",
    "price",
    "gift",
    "card",
    "coffee",
    "table",
    "window",
    "corner",
    "shipping",
    "parcel",
    "delivery",
    "monday",
    "friday",
    "weekend",
    "morning",
    "evening",
    "thanks",
    "hello",
    "great",
    "lovely",
    "tomorrow",
    "signed",
    "copy",
    "edition",
    "paperback",
]
QUERIES = {"common word": "novel", "rare word": "zeppelin", "prefix": "signed edi"}


async def fill(db: Database, count: int) -> None:
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    async with db.write() as session:
        await session.execute(
            insert(Conversation),
            [
                {
                    "id": c,
                    "kind": "direct",
                    "created_by": READER,
                    "created_at": now,
                    "updated_at": now,
                }
                for c in range(1, 401)
            ],
        )
        await session.execute(
            insert(Participant),
            [
                {
                    "conversation_id": c,
                    "user_id": READER if c <= 100 else 1000 + c,
                    "joined_at": now,
                }
                for c in range(1, 401)
            ]
            + [
                {"conversation_id": c, "user_id": 2000 + c, "joined_at": now} for c in range(1, 401)
            ],
        )
    batch: list[dict[str, Any]] = []
    for i in range(1, count + 1):
        words = rng.choices(WORDS, k=rng.randint(4, 16))
        if i % 10_000 == 0:
            words.append("zeppelin")
        batch.append(
            {
                "conversation_id": rng.randint(1, 400),
                "sender_id": 7,
                "body": " ".join(words).capitalize(),
                "created_at": now - dt.timedelta(seconds=count - i),
            }
        )
        if len(batch) == 5000 or i == count:
            async with db.write() as session:
                await session.execute(insert(Message), batch)
            batch = []
    async with db.write() as session:  # fresh statistics, as the database's own upkeep keeps them
        await session.execute(text("ANALYZE"))


async def timed(db: Database, q: str, *, indexed: bool, runs: int) -> float:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=365)
    match = (
        fulltext.matching(db.dialect, fulltext.words(q)) if indexed else contains(Message.body, q)
    )
    stmt = (
        visible_messages(READER, since=since, hidden=(), include_deleted=False)
        .where(match)
        .order_by(Message.id.desc())
        .limit(50)
    )
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        async with db.read() as session:
            if indexed:
                await fulltext.plan_for_these_words(session, db.dialect)
            (await session.scalars(stmt)).all()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def main(url: str | None, count: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(url or f"sqlite+aiosqlite:///{tmp}/messages.db", name="messaging")
        try:
            await migrate.upgrade(db)
            start = time.perf_counter()
            await fill(db, count)
            print(
                f"{db.dialect}: {count:,} messages written in {time.perf_counter() - start:.1f} s"
            )
            print(f"{'query':<14}{'substring scan':>16}{'full-text index':>17}")
            for label, q in QUERIES.items():
                before = await timed(db, q, indexed=False, runs=runs)
                after = await timed(db, q, indexed=True, runs=runs)
                print(f"{label:<14}{before:>13.1f} ms{after:>14.1f} ms")
        finally:
            await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an empty messaging database (default: a temporary SQLite)")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.messages, args.runs))
