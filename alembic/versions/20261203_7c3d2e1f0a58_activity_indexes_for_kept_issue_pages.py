"""activity indexes for kept issue pages

Revision ID: 7c3d2e1f0a58
Revises: 5b1e0c7a9d42
Create Date: 2026-12-03 11:40:00

An issue page's kept part is keyed by the issue's latest event and by its project's latest
change to itself (decision 0016): (issue_id, seq) replaces the index on issue_id alone, and a
partial index finds a project's own events without walking its issues' events.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '7c3d2e1f0a58'
down_revision: Union[str, Sequence[str], None] = '5b1e0c7a9d42'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

PROJECT_EVENTS = sa.text("issue_id IS NULL")


def upgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_issue_id_seq', ['issue_id', 'seq'], unique=False)
        batch_op.create_index(
            'ix_activity_project_id_seq_project_events',
            ['project_id', 'seq'],
            unique=False,
            postgresql_where=PROJECT_EVENTS,
            sqlite_where=PROJECT_EVENTS,
        )
        batch_op.drop_index('ix_activity_issue_id')


def downgrade() -> None:
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index('ix_activity_issue_id', ['issue_id'], unique=False)
        batch_op.drop_index('ix_activity_project_id_seq_project_events')
        batch_op.drop_index('ix_activity_issue_id_seq')
