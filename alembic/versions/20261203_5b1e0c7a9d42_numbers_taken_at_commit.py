"""numbers taken at commit

Revision ID: 5b1e0c7a9d42
Revises: 4cc4bfd9da11
Create Date: 2026-12-03 11:30:00

An issue's number and an event's seq are written at the end of their transaction, by the
statement that advances the project's counters (decision 0015): until then the row holds NULL.
No committed row ever does; the unique constraints keep both gap-free per project.

"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "5b1e0c7a9d42"
down_revision: Union[str, Sequence[str], None] = "4cc4bfd9da11"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def _refuse_cascading_rebuild() -> None:
    # Batch mode rebuilds SQLite tables (copy, DROP, rename): with foreign keys enforced, the
    # DROP of a filled `issue` would cascade into its comments. `alembic upgrade` runs without
    # them; an engine that enforces them may only migrate an empty database.
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    enforced = bind.exec_driver_sql("PRAGMA foreign_keys").scalar()
    if enforced and bind.exec_driver_sql("SELECT 1 FROM issue LIMIT 1").first():
        raise RuntimeError("Run `alembic upgrade head` for this database (see README).")


def upgrade() -> None:
    _refuse_cascading_rebuild()
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.alter_column("number", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    _refuse_cascading_rebuild()
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("issue", schema=None) as batch_op:
        batch_op.alter_column("number", existing_type=sa.Integer(), nullable=False)
