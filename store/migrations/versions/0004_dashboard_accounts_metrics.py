"""dashboard: user accounts, funnel rollup, interaction.trigger_event_id (conversion attribution)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trigger_event_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key("fk_interaction_trigger_event", "triggerevent", ["trigger_event_id"], ["id"])
        batch_op.create_unique_constraint("uq_interaction_trigger_event_id", ["trigger_event_id"])
    op.create_table(
        "useraccount",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("territory", sa.JSON(), nullable=False),
        sa.Column("assignee", sa.String(length=80), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("last_login_at", _UTC, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_useraccount_email", "useraccount", ["email"], unique=True)
    op.create_table(
        "funnelrollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=False),
        sa.Column("arm", sa.String(length=10), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=True),
        sa.Column("trigger_type", sa.String(length=30), nullable=True),
        sa.Column("metier_family", sa.String(length=40), nullable=True),
        sa.Column("commune_code", sa.String(length=5), nullable=True),
        sa.Column("epci_code", sa.String(length=9), nullable=True),
        sa.Column("departement_code", sa.String(length=3), nullable=True),
        sa.Column("channel", sa.String(length=12), nullable=True),
        sa.Column("targeted", sa.Integer(), nullable=False),
        sa.Column("contacted", sa.Integer(), nullable=False),
        sa.Column("delivered", sa.Integer(), nullable=False),
        sa.Column("clicked", sa.Integer(), nullable=False),
        sa.Column("responded", sa.Integer(), nullable=False),
        sa.Column("converted", sa.Integer(), nullable=False),
        sa.Column("opted_out", sa.Integer(), nullable=False),
        sa.Column("conversion_days", sa.Float(), nullable=False),
        sa.Column("refreshed_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_funnelrollup_campaign", "funnelrollup", ["campaign_id"])
    # The live funnel groups a campaign's rows by enrollment: these make it an index range scan.
    op.create_index("ix_message_campaign_enrollment", "message", ["campaign_id", "enrollment_id"])
    op.create_index("ix_interaction_campaign_enrollment", "interaction", ["campaign_id", "enrollment_id"])
    op.create_index("ix_enrollment_business_enrolled", "enrollment", ["business_id", "enrolled_at"])


def downgrade() -> None:
    op.drop_index("ix_enrollment_business_enrolled", table_name="enrollment")
    op.drop_index("ix_interaction_campaign_enrollment", table_name="interaction")
    op.drop_index("ix_message_campaign_enrollment", table_name="message")
    op.drop_index("ix_funnelrollup_campaign", table_name="funnelrollup")
    op.drop_table("funnelrollup")
    op.drop_index("ix_useraccount_email", table_name="useraccount")
    op.drop_table("useraccount")
    with op.batch_alter_table("interaction", schema=None) as batch_op:
        batch_op.drop_constraint("uq_interaction_trigger_event_id", type_="unique")
        batch_op.drop_constraint("fk_interaction_trigger_event", type_="foreignkey")
        batch_op.drop_column("trigger_event_id")
