"""Ambassadors' NAF sub-classes and offers' grants (issue 13, point 2): ambassador.nafs (the sub-classes an
ambassador practises, matched before the trade family) and offer.grant (who pays what, as a sentence, apart from
the price). An offer whose price reads as a grant ("50 % des dépenses jusqu'à 1 500 €") keeps it until it is
imported again: the import now refuses it there.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ambassador", schema=None) as batch_op:
        batch_op.add_column(sa.Column("nafs", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.add_column(sa.Column("grant", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("offer", schema=None) as batch_op:
        batch_op.drop_column("grant")
    with op.batch_alter_table("ambassador", schema=None) as batch_op:
        batch_op.drop_column("nafs")
