"""useraccount.session_epoch, partner.revoked_at, signinfailure.source: sessions end on sign-out, password
change and `declic users disable`; `declic partners revoke`; the sign-in lockout is per e-mail and address

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("useraccount", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.add_column(sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    with op.batch_alter_table("signinfailure", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False, server_default="")
        )
    op.create_index("ix_signinfailure_source_at", "signinfailure", ["source", "at"])


def downgrade() -> None:
    op.drop_index("ix_signinfailure_source_at", table_name="signinfailure")
    with op.batch_alter_table("signinfailure", schema=None) as batch_op:
        batch_op.drop_column("source")
    with op.batch_alter_table("partner", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
    with op.batch_alter_table("useraccount", schema=None) as batch_op:
        batch_op.drop_column("session_epoch")
