"""attachments

Revision ID: a7f3c9e2b418
Revises: 3e8a1f6b2c90
Create Date: 2026-12-03 14:30:00

Files attached to an issue or a comment (decision 0020): the row names the stored bytes by
their storage key; the bytes themselves live on disk or in an object store.

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision: str = "a7f3c9e2b418"
down_revision: Union[str, Sequence[str], None] = '3e8a1f6b2c90'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "attachment",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("uploader_id", sa.Integer(), nullable=True),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("storage_key", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("has_thumbnail", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["comment.id"],
            name=op.f("fk_attachment_comment_id_comment"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"],
            ["issue.id"],
            name=op.f("fk_attachment_issue_id_issue"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["uploader_id"],
            ["user.id"],
            name=op.f("fk_attachment_uploader_id_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachment")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_attachment_storage_key")),
    )
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.create_index("ix_attachment_issue_id_id", ["issue_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_attachment_comment_id"), ["comment_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_attachment_uploader_id"), ["uploader_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attachment_uploader_id"))
        batch_op.drop_index(batch_op.f("ix_attachment_comment_id"))
        batch_op.drop_index("ix_attachment_issue_id_id")
    op.drop_table("attachment")
