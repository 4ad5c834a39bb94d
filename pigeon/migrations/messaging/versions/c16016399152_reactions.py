"""reactions

One row per person and emoji on a message; messages count their reactions so readers look
them up only where there are some.

Revision ID: c16016399152
Revises: 916c91359e4c
Create Date: 2026-11-27 16:55:03.558936
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "c16016399152"
down_revision: str | None = "916c91359e4c"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reaction",
        sa.Column(
            "message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("emoji", sa.String(length=64), nullable=False),
        sa.Column("created_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["message.id"],
            name=op.f("fk_reaction_message_id_message"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "user_id", "emoji", name=op.f("pk_reaction")),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reaction_count", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("reaction_count")

    op.drop_table("reaction")
