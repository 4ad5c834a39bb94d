"""message full-text index

Message search narrows candidates with a full-text index instead of scanning every body.

SQLite: an FTS5 table over `message.body` (external content, so the text is stored once),
holding live messages only; triggers keep it in step with sends, edits, deletes, the retention
job's soft deletes and purges. The index is filled from the existing messages here.
A later revision that rebuilds `message` in SQLite batch mode drops these triggers with the
old table and must create them again (`message_fts_triggers` below).

PostgreSQL: a GIN index on `to_tsvector('simple', body)`, maintained by PostgreSQL itself.
`simple` lowercases and keeps every word: a community writes in several languages, and one
language's stemming and stop words would mangle the others (prefix matching covers plurals).

Revision ID: a3f1c9e2b7d4
Revises: 572b5768e9c1
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a3f1c9e2b7d4"
down_revision: str | None = "572b5768e9c1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# an entry is dropped with the exact text it was indexed with, so only live messages are in
# the index, and every change removes the old entry before adding the new one
message_fts_triggers = (
    """
    CREATE TRIGGER message_fts_insert AFTER INSERT ON message
    WHEN new.deleted_at IS NULL BEGIN
      INSERT INTO message_fts(rowid, body) VALUES (new.id, new.body);
    END
    """,
    """
    CREATE TRIGGER message_fts_delete AFTER DELETE ON message
    WHEN old.deleted_at IS NULL BEGIN
      INSERT INTO message_fts(message_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END
    """,
    """
    CREATE TRIGGER message_fts_update AFTER UPDATE OF body, deleted_at ON message BEGIN
      INSERT INTO message_fts(message_fts, rowid, body)
        SELECT 'delete', old.id, old.body WHERE old.deleted_at IS NULL;
      INSERT INTO message_fts(rowid, body)
        SELECT new.id, new.body WHERE new.deleted_at IS NULL;
    END
    """,
)


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_message_body_fts ON message "
            "USING gin (to_tsvector('simple'::regconfig, body))"
        )
        return
    op.execute(
        "CREATE VIRTUAL TABLE message_fts USING fts5("
        "body, content='message', content_rowid='id', "
        "tokenize='unicode61 remove_diacritics 2')"
    )
    for trigger in message_fts_triggers:
        op.execute(trigger)
    op.execute(
        "INSERT INTO message_fts(rowid, body) SELECT id, body FROM message WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_message_body_fts")
        return
    for name in ("message_fts_update", "message_fts_delete", "message_fts_insert"):
        op.execute(f"DROP TRIGGER {name}")
    op.execute("DROP TABLE message_fts")
