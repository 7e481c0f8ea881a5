"""milestones: a project's milestones, an issue's milestone and estimate

Revision ID: 3e8a1f6b2c90
Revises: 3e8a41c6b2d9
Create Date: 2026-12-03 14:20:00

Milestones (decision 0019): a table of them per project, and on issue a nullable milestone_id
(set to NULL when its milestone is deleted) indexed with the project (and status and position, for the board filtered by milestone),
and an optional estimate in story points.

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision: str = '3e8a1f6b2c90'
down_revision: Union[str, Sequence[str], None] = '3e8a41c6b2d9'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('milestone',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('closed_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_milestone_project_id_project'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_milestone')),
    sa.UniqueConstraint('project_id', 'title', name=op.f('uq_milestone_project_id_title'))
    )
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('milestone_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('estimate', sa.Integer(), nullable=True))
        batch_op.create_index(
            'ix_issue_project_id_milestone_id_status_id_position',
            ['project_id', 'milestone_id', 'status_id', 'position'],
            unique=False,
        )
        batch_op.create_foreign_key(batch_op.f('fk_issue_milestone_id_milestone'), 'milestone', ['milestone_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_issue_milestone_id_milestone'), type_='foreignkey')
        batch_op.drop_index('ix_issue_project_id_milestone_id_status_id_position')
        batch_op.drop_column('estimate')
        batch_op.drop_column('milestone_id')
    op.drop_table('milestone')
