"""journeys: ambassadors, offers, scheduled campaign occurrences, enrollment.ambassador_id

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ambassador",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("metier", sa.String(), nullable=True),
        sa.Column("families", sa.JSON(), nullable=False),
        sa.Column("communes", sa.JSON(), nullable=False),
        sa.Column("epcis", sa.JSON(), nullable=False),
        sa.Column("departements", sa.JSON(), nullable=False),
        sa.Column("channels", sa.JSON(), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("commune", sa.String(), nullable=True),
        sa.Column("monthly_capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "offer",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=80), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("families", sa.JSON(), nullable=False),
        sa.Column("territory", sa.JSON(), nullable=False),
        sa.Column("format", sa.String(length=20), nullable=True),
        sa.Column("duration", sa.String(), nullable=True),
        sa.Column("hours", sa.String(), nullable=True),
        sa.Column("price", sa.String(), nullable=True),
        sa.Column("url", sa.String(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _UTC, nullable=False),
        sa.Column("updated_at", _UTC, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "campaignoccurrence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("occurs_at", _UTC, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("enrolled", sa.Integer(), nullable=False),
        sa.Column("missed", sa.Integer(), nullable=False),
        sa.Column("started_at", _UTC, nullable=False),
        sa.Column("finished_at", _UTC, nullable=True),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "occurs_at", name="uq_occurrence_once"),
    )
    with op.batch_alter_table("campaignoccurrence", schema=None) as batch_op:
        batch_op.create_index("ix_campaignoccurrence_campaign_id", ["campaign_id"], unique=False)
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ambassador_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_enrollment_ambassador_id", ["ambassador_id"], unique=False)
        batch_op.create_foreign_key("fk_enrollment_ambassador", "ambassador", ["ambassador_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("enrollment", schema=None) as batch_op:
        batch_op.drop_constraint("fk_enrollment_ambassador", type_="foreignkey")
        batch_op.drop_index("ix_enrollment_ambassador_id")
        batch_op.drop_column("ambassador_id")
    with op.batch_alter_table("campaignoccurrence", schema=None) as batch_op:
        batch_op.drop_index("ix_campaignoccurrence_campaign_id")
    op.drop_table("campaignoccurrence")
    op.drop_table("offer")
    op.drop_table("ambassador")
