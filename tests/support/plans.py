"""What SQLite plans for the statements a piece of work runs: its planner has no statistics, so
a plan that reads every message is easy to get and slow to notice."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event

from pigeon.core.db import Database

# a scan; or "deleted_at IS NULL" alone: all live messages
WHOLE = re.compile(r"^SCAN message\b|message USING .*\(deleted_at=\?\)")
# every id above a bound: the whole table, unless the bound is a cursor kept between reads
ABOVE = re.compile(r"message USING .*\(rowid>\?\)")


@contextlib.contextmanager
def reads_of_messages(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs on messages this task runs meanwhile (not those of background jobs)."""
    seen: list[tuple[str, Any]] = []
    mine = asyncio.current_task()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if asyncio.current_task() is not mine:
            return
        if statement.lstrip().upper().startswith("SELECT") and " message" in statement:
            seen.append((statement, parameters))

    engines = {db.read_engine.sync_engine, db.write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


def whole_table_reads(
    db: Database, statements: list[tuple[str, Any]], *, cursor: bool = False
) -> list[Any]:
    """The statements whose plan reads every message (or every live one), with the plan.
    With `cursor`, reading every id above a bound is taken as walking on from a cursor."""
    assert statements, "no statement on messages was run"
    assert db.path
    plain = sqlite3.connect(db.path)
    found = []
    try:
        for statement, parameters in statements:
            plan = [row[3] for row in plain.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            if any(WHOLE.search(step) or (not cursor and ABOVE.search(step)) for step in plan):
                found.append((statement, plan))
    finally:
        plain.close()
    return found
