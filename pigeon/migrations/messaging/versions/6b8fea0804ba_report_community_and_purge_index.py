"""report community and purge index

Reports carry the community whose managers moderate them; the retention purge finds
soft-deleted messages by deleted_at.

Revision ID: 6b8fea0804ba
Revises: 4e51ed8d32b2
Create Date: 2026-11-21 05:22:00.522123
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6b8fea0804ba"
down_revision: str | None = "4e51ed8d32b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index("ix_message_deleted_at", ["deleted_at"], unique=False)

    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(sa.Column("community_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_report_community_id", ["community_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_index("ix_report_community_id")
        batch_op.drop_column("community_id")

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_deleted_at")
