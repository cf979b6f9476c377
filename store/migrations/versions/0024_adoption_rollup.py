"""Adoption in the nightly rollup (issue 6 after issue 16): `adoptionrollup` holds a campaign's adoption by arm and
by tool category as of the funnel rollup's refresh, so a report no longer counts the campaign's messages live
(0.7-1.0 s at 1 M messages); the holdout's row also keeps how many of its controls another campaign contacted
(issue 20's check, 0.47 s at 1 M messages counted live). Rollups made before this revision have no rows here: their
reports count both live until the next refresh. A partial index finds a campaign's messages outside journeys'
steps (answers, re-diagnostics: `store.rediagnostic.asked`, read by every report) instead of a scan of the message
table, and an index finds a campaign's answers of one kind (adoption, diagnostics, "pas pour moi").

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "adoptionrollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("arm", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("adopted", sa.Integer(), nullable=False),
        sa.Column("contacted_adopted", sa.Integer(), nullable=False),
        sa.Column("control_contacted", sa.Integer(), nullable=True),
        sa.Column("refreshed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_adoptionrollup_campaign", "adoptionrollup", ["campaign_id"])
    op.create_index("ix_message_campaign_extra_step", "message", ["campaign_id", "step"],
                    postgresql_where=sa.text("step >= 100"), sqlite_where=sa.text("step >= 100"))
    op.create_index("ix_interaction_campaign_kind", "interaction", ["campaign_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_interaction_campaign_kind", table_name="interaction")
    op.drop_index("ix_message_campaign_extra_step", table_name="message")
    op.drop_index("ix_adoptionrollup_campaign", table_name="adoptionrollup")
    op.drop_table("adoptionrollup")
