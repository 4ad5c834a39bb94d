"""organising conversations

What each person does with a conversation for themselves: mute, pin, archive, mark unread,
remove it up to a message.

Revision ID: 97b5428c7af9
Revises: c16016399152
Create Date: 2026-11-27 17:00:24.813037
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "97b5428c7af9"
down_revision: str | None = "c16016399152"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("muted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("marked_unread", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("pinned_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("archived_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("removed_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cleared_to_id", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("cleared_to_id")
        batch_op.drop_column("removed_at")
        batch_op.drop_column("archived_at")
        batch_op.drop_column("pinned_at")
        batch_op.drop_column("marked_unread")
        batch_op.drop_column("muted")
