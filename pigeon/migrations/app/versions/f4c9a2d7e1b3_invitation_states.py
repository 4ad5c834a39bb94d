"""invitations: tier, revoked, declined, who accepted; sent by the system (no inviter)

Revision ID: f4c9a2d7e1b3
Revises: f7a3c9d2e6b4
Create Date: 2026-11-27 22:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "f4c9a2d7e1b3"
down_revision: str | None = "f7a3c9d2e6b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.alter_column("inviter_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("tier", sa.String(length=20), nullable=True))
        batch_op.add_column(
            sa.Column("revoked_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("declined_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("accepted_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_invitation_accepted_by_id_user"),
            "user",
            ["accepted_by_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index(batch_op.f("ix_invitation_email"), ["email"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM invitation WHERE inviter_id IS NULL")
    with op.batch_alter_table("invitation", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitation_email"))
        batch_op.drop_constraint(
            batch_op.f("fk_invitation_accepted_by_id_user"), type_="foreignkey"
        )
        batch_op.drop_column("accepted_by_id")
        batch_op.drop_column("declined_at")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("tier")
        batch_op.alter_column("inviter_id", existing_type=sa.Integer(), nullable=False)
