"""privacy settings: hide last seen, read receipts

Revision ID: a7d2e91c4b10
Revises: c6f14643e5be
Create Date: 2026-11-27 19:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7d2e91c4b10"
down_revision: str | None = "c6f14643e5be"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("show_last_seen", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("read_receipts", sa.Boolean(), server_default=sa.true(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("read_receipts")
        batch_op.drop_column("show_last_seen")
