"""account emails: single-use tokens (verify, reset, change email) and a verified address

Existing accounts start unverified (nobody has proved they read their mail yet), except admins:
the first admin can only have been made at the server's console, by the operator, and an admin
with a banner they cannot act on (email not configured yet) helps nobody.

Revision ID: f4a9c2d7e813
Revises: f4c9a2d7e1b3
Create Date: 2026-11-27 22:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "f4a9c2d7e813"
down_revision: str | None = "f4c9a2d7e1b3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_verified_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True)
        )
    user = sa.table(
        "user",
        sa.column("role", sa.String),
        sa.column("created_at"),
        sa.column("email_verified_at"),
    )
    op.execute(
        user.update().where(user.c.role == "admin").values(email_verified_at=user.c.created_at)
    )
    op.create_table(
        "account_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("new_email", sa.String(length=254), nullable=True),
        sa.Column("created_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user.id"],
            name=op.f("fk_account_token_user_id_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_token_token_hash")),
    )
    op.create_index(
        "ix_account_token_user_id_purpose",
        "account_token",
        ["user_id", "purpose"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_account_token_user_id_purpose", table_name="account_token")
    op.drop_table("account_token")
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("email_verified_at")
