"""signinfailure: wrong dashboard passwords, kept in the store so every web process shares the lockout

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 11:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signinfailure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signinfailure_email_at", "signinfailure", ["email", "at"])


def downgrade() -> None:
    op.drop_index("ix_signinfailure_email_at", table_name="signinfailure")
    op.drop_table("signinfailure")
