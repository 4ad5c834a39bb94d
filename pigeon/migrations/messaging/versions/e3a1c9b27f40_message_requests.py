"""message requests

A participant who has not accepted a direct conversation someone else started with them.
Everyone already in a conversation has, in effect, accepted it: the default is false.

Revision ID: e3a1c9b27f40
Revises: a3f1c9e2b7d4
Create Date: 2026-11-27 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3a1c9b27f40"
down_revision: str | None = "a3f1c9e2b7d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_pending", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("participant", schema=None) as batch_op:
        batch_op.drop_column("request_pending")
