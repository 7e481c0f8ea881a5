"""import_job.project_id nullable: a restore's job has no project until it is done (decision 0030).

Revision ID: 45a0ad28d19f
Revises: 977b76e9e218
Create Date: 2026-12-04 19:01:12.836314

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "45a0ad28d19f"
down_revision: str | Sequence[str] | None = "977b76e9e218"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.alter_column("project_id", existing_type=sa.INTEGER(), nullable=True)


def downgrade() -> None:
    # Restores that never made their project have nowhere to go back to.
    op.execute("DELETE FROM import_job WHERE project_id IS NULL")
    with op.batch_alter_table("import_job", schema=None) as batch_op:
        batch_op.alter_column("project_id", existing_type=sa.INTEGER(), nullable=False)
