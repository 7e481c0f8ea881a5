"""inbox read and done

The inbox (decision 0028): a notification is read, and done, per person; one index serves a
person's inbox newest first and their unread count. Rows already mailed count as read, so
nobody meets a full inbox of old news.

Revision ID: 977b76e9e218
Revises: 942a0a1f5ab5
Create Date: 2026-12-04 18:16:07.385937

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import app.db


# revision identifiers, used by Alembic.
revision: str = '977b76e9e218'
down_revision: Union[str, Sequence[str], None] = '942a0a1f5ab5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.add_column(sa.Column('read_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('done_at', app.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_notification_inbox', ['user_id', 'done_at', 'created_at', 'issue_id', 'read_at'], unique=False)
    op.execute("UPDATE notification SET read_at = emailed_at WHERE emailed_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('notification', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_inbox')
        batch_op.drop_column('done_at')
        batch_op.drop_column('read_at')

