"""email digests: the per-person setting, what the job last sent, and extra email headers

Revision ID: f7a3c9d2e6b4
Revises: e3b5c8a1f2d4
Create Date: 2026-11-27 22:15:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "f7a3c9d2e6b4"
down_revision: str | None = "e3b5c8a1f2d4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_digest", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.add_column(sa.Column("headers", sa.Text(), nullable=True))
    op.create_table(
        "digest_state",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("sent_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("covered_message_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_digest_state_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_digest_state")),
    )


def downgrade() -> None:
    op.drop_table("digest_state")
    with op.batch_alter_table("outbox_email", schema=None) as batch_op:
        batch_op.drop_column("headers")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("email_digest")
