"""user deactivated_at

A site admin can deactivate an account (decision 0022): every sign-in, cookie, token and
stream of a user with deactivated_at set is refused.

Revision ID: 8f3e1a32c519
Revises: 63f011201f10
Create Date: 2026-12-04 17:59:26.327415

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import app.db


# revision identifiers, used by Alembic.
revision: str = '8f3e1a32c519'
down_revision: Union[str, Sequence[str], None] = '63f011201f10'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deactivated_at', app.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('deactivated_at')
