"""reports on people

A report may be on a person rather than a message: then it names no message.

Revision ID: 572b5768e9c1
Revises: d50f484b420b
Create Date: 2026-11-27 17:11:26.738690
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "572b5768e9c1"
down_revision: str | None = "d50f484b420b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.alter_column("message_id", existing_type=sa.BIGINT(), nullable=True)
        batch_op.alter_column("conversation_id", existing_type=sa.BIGINT(), nullable=True)
        batch_op.alter_column(
            "message_created_at",
            existing_type=pigeon.core.db.UTCDateTime(timezone=True),
            nullable=True,
        )


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.alter_column(
            "message_created_at",
            existing_type=pigeon.core.db.UTCDateTime(timezone=True),
            nullable=False,
        )
        batch_op.alter_column("conversation_id", existing_type=sa.BIGINT(), nullable=False)
        batch_op.alter_column("message_id", existing_type=sa.BIGINT(), nullable=False)
