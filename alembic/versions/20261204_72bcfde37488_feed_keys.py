"""feed keys

The key of a person's Atom feed links (decision 0027): a salt whose HMAC is the token.

Revision ID: 72bcfde37488
Revises: 9f7ad49cce8e
Create Date: 2026-12-04 18:12:18.314626

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import app.db


# revision identifiers, used by Alembic.
revision: str = '72bcfde37488'
down_revision: Union[str, Sequence[str], None] = '9f7ad49cce8e'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('feed_key',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('salt', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_feed_key_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_feed_key'))
    )


def downgrade() -> None:
    op.drop_table('feed_key')
