"""The campaign page's live counts in the nightly rollup (issue 6 at national scale). `globaleffectrollup` holds, as
of each refresh, the whole programme against each territory's global control group, once per territory (the
barometer's) and once per campaign touching it (its report's): counted live, a département holding 2.8 million
businesses and 5.6 million enrollments added 7 seconds to every report of a campaign there. `overlaprollup` holds
how many businesses two overlapping campaigns' segments both select, for the specs' versions of the refresh (250 ms
each, live, at 2.8 million). Until the first refresh after this revision, both are counted live, as before.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0030"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "globaleffectrollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=True),
        sa.Column("level", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False),
        sa.Column("programme_n", sa.Integer(), nullable=False),
        sa.Column("programme_converted", sa.Integer(), nullable=False),
        sa.Column("global_n", sa.Integer(), nullable=False),
        sa.Column("global_converted", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_globaleffectrollup_campaign", "globaleffectrollup", ["campaign_id"])
    op.create_table(
        "overlaprollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("other_version", sa.Integer(), nullable=False),
        sa.Column("businesses", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_overlaprollup_campaign", "overlaprollup", ["campaign_id"])


def downgrade() -> None:
    op.drop_index("ix_overlaprollup_campaign", table_name="overlaprollup")
    op.drop_table("overlaprollup")
    op.drop_index("ix_globaleffectrollup_campaign", table_name="globaleffectrollup")
    op.drop_table("globaleffectrollup")
