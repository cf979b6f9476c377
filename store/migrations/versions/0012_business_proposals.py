"""business.created_by and businessproposal: a partner corrects only its own businesses; the rest is proposed

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True))
    op.create_table(
        "businessproposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("field", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("current_value", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("proposed_value", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"]),
        sa.ForeignKeyConstraint(["event_id"], ["triggerevent.id"]),
        sa.ForeignKeyConstraint(["partner_id"], ["partner.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_businessproposal_business_id", "businessproposal", ["business_id"])


def downgrade() -> None:
    op.drop_index("ix_businessproposal_business_id", table_name="businessproposal")
    op.drop_table("businessproposal")
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("created_by")
