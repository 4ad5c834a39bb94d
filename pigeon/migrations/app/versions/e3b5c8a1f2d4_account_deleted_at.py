"""account deletion: when an account was deleted (and anonymised)

Revision ID: e3b5c8a1f2d4
Revises: b3e8f1a5c7d2
Create Date: 2026-11-27 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "e3b5c8a1f2d4"
down_revision: str | None = "b3e8f1a5c7d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deleted_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("deleted_at")
