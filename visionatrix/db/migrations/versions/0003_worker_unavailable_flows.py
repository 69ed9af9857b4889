"""workers.unavailable_flows: the installed flows a worker cannot run, with the reason

Revision ID: 0003_worker_unavailable_flows
Revises: 0002_task_events
Create Date: 2026-12-02 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_worker_unavailable_flows"
down_revision: str | None = "0002_task_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        # rows written before this reported nothing: an empty object
        batch_op.add_column(
            sa.Column("unavailable_flows", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("workers", schema=None) as batch_op:
        batch_op.drop_column("unavailable_flows")
