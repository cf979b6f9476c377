"""ingest: business.head_office and an index to find pending events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(sa.Column("head_office", sa.Boolean(), nullable=True))
    with op.batch_alter_table("triggerevent", schema=None) as batch_op:
        batch_op.create_index("ix_trigger_event_status", ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("triggerevent", schema=None) as batch_op:
        batch_op.drop_index("ix_trigger_event_status")
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("head_office")
