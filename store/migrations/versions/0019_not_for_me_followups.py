"""Answers to "Ce n'est pas pour moi" and follow-up that lasts (issue 16, points 2 and 3): a business paused until a
date and one shown free offers only; the enrollment's answer, its action and when the answer's own message is due;
follow-up tasks at 30 and 90 days after a callback, an enrolment or an ambassador meeting (followuptask).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("business") as batch:
        batch.add_column(sa.Column("paused_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("free_offers_only", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("enrollment") as batch:
        batch.add_column(sa.Column("not_for_me", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch.add_column(sa.Column("not_for_me_action", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=True))
        batch.add_column(sa.Column("answer_due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.create_table(
        "followuptask",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("interaction_id", sa.Integer(), nullable=False),
        sa.Column("business_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=30), nullable=False),
        sa.Column("assignee", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("after_days", sa.Integer(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.Column("note", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("done_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("done_by", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["interaction_id"], ["interaction.id"]),
        sa.ForeignKeyConstraint(["business_id"], ["business.id"]),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaign.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("interaction_id", "after_days", name="uq_followup_interaction_days"),
    )
    op.create_index("ix_followup_queue", "followuptask", ["status", "due_on"])
    op.create_index(op.f("ix_followuptask_business_id"), "followuptask", ["business_id"])
    op.create_index(op.f("ix_followuptask_campaign_id"), "followuptask", ["campaign_id"])
    op.create_index(op.f("ix_followuptask_assignee"), "followuptask", ["assignee"])


def downgrade() -> None:
    op.drop_table("followuptask")
    with op.batch_alter_table("enrollment") as batch:
        batch.drop_column("answer_due_at")
        batch.drop_column("not_for_me_action")
        batch.drop_column("not_for_me")
    with op.batch_alter_table("business") as batch:
        batch.drop_column("free_offers_only")
        batch.drop_column("paused_until")
