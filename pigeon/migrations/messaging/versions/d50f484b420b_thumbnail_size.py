"""thumbnail size

A thumbnail's size is kept with its attachment, so serving one asks the store for nothing
but the bytes.

Revision ID: d50f484b420b
Revises: 97b5428c7af9
Create Date: 2026-11-27 17:06:11.509166
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d50f484b420b"
down_revision: str | None = "97b5428c7af9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("thumbnail_size", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_column("thumbnail_size")
