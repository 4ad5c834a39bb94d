"""outbox_email: emails queued with the change that causes them

Revision ID: b3e8f1a5c7d2
Revises: a7d2e91c4b10
Create Date: 2026-11-27 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pigeon.core.db import UTCDateTime

revision: str = "b3e8f1a5c7d2"
down_revision: str | None = "a7d2e91c4b10"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outbox_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("dead_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_email")),
    )
    op.create_index(
        "ix_outbox_email_due",
        "outbox_email",
        ["sent_at", "dead_at", "next_attempt_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_email_due", table_name="outbox_email")
    op.drop_table("outbox_email")
