"""metrics: funnel rollup rows by grouping set (one breakdown per row), so a report reads a few hundred rows

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("funnelrollup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grouping", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("funnelrollup", schema=None) as batch_op:
        batch_op.drop_column("grouping")
