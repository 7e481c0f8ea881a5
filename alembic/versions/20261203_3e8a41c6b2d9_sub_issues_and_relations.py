"""sub-issues and relations

Revision ID: 3e8a41c6b2d9
Revises: 7c3d2e1f0a58
Create Date: 2026-12-03 14:20:00

An issue's parent (a sub-issue's, same project, SET NULL when the parent goes) and the
relations between two issues (blocks, duplicates, relates), one stored direction per kind
(decision 0018).

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

import app.db


# revision identifiers, used by Alembic.
revision: str = '3e8a41c6b2d9'
down_revision: Union[str, Sequence[str], None] = '7c3d2e1f0a58'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('parent_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_issue_parent_id'), ['parent_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_issue_parent_id_issue'), 'issue', ['parent_id'], ['id'],
            ondelete='SET NULL',
        )
    op.create_table(
        'issue_relation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('target_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint('source_id <> target_id', name=op.f('ck_issue_relation_not_itself')),
        sa.ForeignKeyConstraint(
            ['created_by_id'], ['user.id'],
            name=op.f('fk_issue_relation_created_by_id_user'), ondelete='SET NULL',
        ),
        sa.ForeignKeyConstraint(
            ['source_id'], ['issue.id'],
            name=op.f('fk_issue_relation_source_id_issue'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['target_id'], ['issue.id'],
            name=op.f('fk_issue_relation_target_id_issue'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_issue_relation')),
        sa.UniqueConstraint(
            'source_id', 'target_id', 'kind',
            name=op.f('uq_issue_relation_source_id_target_id_kind'),
        ),
    )
    op.create_index(
        'ix_issue_relation_target_id_kind', 'issue_relation', ['target_id', 'kind'], unique=False
    )


def downgrade() -> None:
    op.drop_index('ix_issue_relation_target_id_kind', table_name='issue_relation')
    op.drop_table('issue_relation')
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_issue_parent_id_issue'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_issue_parent_id'))
        batch_op.drop_column('parent_id')
