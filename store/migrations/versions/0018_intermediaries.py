"""Intermediaries (issue 16, point 1): the accounting firms, CMA/CCI and bank advisers and associations a business
already trusts (intermediary), and the businesses each serves, by SIRET, with the link's source and date
(intermediaryclient). The `relay` channel sends each intermediary one digest of their clients who hit a moment.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intermediary",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("phone", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("commune", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column("territory", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "intermediaryclient",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("intermediary_id", sa.Integer(), nullable=False),
        sa.Column("siret", sqlmodel.sql.sqltypes.AutoString(length=14), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("linked_on", sa.Date(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["intermediary_id"], ["intermediary.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intermediary_id", "siret", name="uq_intermediaryclient_link"),
    )
    op.create_index("ix_intermediaryclient_intermediary_id", "intermediaryclient", ["intermediary_id"])
    op.create_index("ix_intermediaryclient_siret", "intermediaryclient", ["siret"])


def downgrade() -> None:
    op.drop_index("ix_intermediaryclient_siret", table_name="intermediaryclient")
    op.drop_index("ix_intermediaryclient_intermediary_id", table_name="intermediaryclient")
    op.drop_table("intermediaryclient")
    op.drop_table("intermediary")
