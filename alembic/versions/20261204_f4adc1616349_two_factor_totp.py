"""two-factor totp

Two-factor sign-in (decision 0023): an account's TOTP credential (its secret encrypted, the
last time step accepted, for replay refusal) and its single-use recovery codes (digests only).

Revision ID: f4adc1616349
Revises: 9e1ddd91e4b3
Create Date: 2026-12-04 18:00:01.537519

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
import app.db


# revision identifiers, used by Alembic.
revision: str = 'f4adc1616349'
down_revision: Union[str, Sequence[str], None] = '9e1ddd91e4b3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('recovery_code',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('code_digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_recovery_code_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_code')),
    sa.UniqueConstraint('user_id', 'code_digest', name=op.f('uq_recovery_code_user_id_code_digest'))
    )
    op.create_table('totp_credential',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('secret_encrypted', sa.String(length=255), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_step', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_totp_credential_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_totp_credential'))
    )


def downgrade() -> None:
    op.drop_table('totp_credential')
    op.drop_table('recovery_code')
