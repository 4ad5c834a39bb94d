"""attachments

Files uploaded to messages: one row per file, named by a message once it is sent; messages
count their attachments so readers look them up only where there are some.

Revision ID: 916c91359e4c
Revises: 6b8fea0804ba
Create Date: 2026-11-27 16:19:39.246804
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import pigeon.core.db

revision: str = "916c91359e4c"
down_revision: str | None = "6b8fea0804ba"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("uploader_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("conversation_id", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(length=80), nullable=False),
        sa.Column("thumbnail_key", sa.String(length=80), nullable=True),
        sa.Column("created_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", pigeon.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_attachment_storage_key")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index("ix_attachment_created_at", ["created_at"], unique=False)
        batch_op.create_index("ix_attachment_message_id", ["message_id"], unique=False)
        batch_op.create_index("ix_attachment_uploader_id", ["uploader_id"], unique=False)

    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("attachment_count", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("attachment_count")

    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index("ix_attachment_uploader_id")
        batch_op.drop_index("ix_attachment_message_id")
        batch_op.drop_index("ix_attachment_created_at")

    op.drop_table("attachment")
