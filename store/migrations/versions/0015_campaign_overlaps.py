"""Overlapping campaigns (issue 20): enrollment.moment (the business's moment one campaign owns), coverage
(businesses a campaign left to the campaign owning their moment, or to a territory's global control group)
and territoryholdout (global control groups per territory)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("moment", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True))
    op.create_index("ix_enrollment_business_moment", "enrollment", ["business_id", "moment"])
    # Enrollments of trigger events already stored own their moment: the event's type in the year it occurred.
    op.execute(
        "UPDATE enrollment SET moment = trigger_type || ':' || (SELECT substr(CAST(triggerevent.occurred_on AS "
        "VARCHAR(20)), 1, 4) FROM triggerevent WHERE triggerevent.id = enrollment.trigger_event_id) "
        "WHERE trigger_event_id IS NOT NULL"
    )
    op.create_table(
        "coverage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("trigger_event_id", sa.Integer(), nullable=True),
        sa.Column("trigger_key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("trigger_type", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("moment", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("covered_by", sa.Integer(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"]),
        sa.ForeignKeyConstraint(["trigger_event_id"], ["triggerevent.id"]),
        sa.ForeignKeyConstraint(["covered_by"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "business_id", "trigger_key", name="uq_coverage_once"),
    )
    op.create_index("ix_coverage_campaign_id", "coverage", ["campaign_id"])
    op.create_index("ix_coverage_business_moment", "coverage", ["business_id", "moment"])
    op.create_table(
        "territoryholdout",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("set_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("set_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("level", "code", name="uq_territoryholdout_place"),
    )


def downgrade() -> None:
    op.drop_table("territoryholdout")
    op.drop_index("ix_coverage_business_moment", table_name="coverage")
    op.drop_index("ix_coverage_campaign_id", table_name="coverage")
    op.drop_table("coverage")
    op.drop_index("ix_enrollment_business_moment", table_name="enrollment")
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_column("moment")
