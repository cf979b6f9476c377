"""metrics: converted among the contacted, kept apart in the rollup (the uplift's exact numerator)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 06:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("funnelrollup", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contacted_converted", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("funnelrollup", schema=None) as batch_op:
        batch_op.drop_column("contacted_converted")
