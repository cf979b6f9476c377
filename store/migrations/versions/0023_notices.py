"""Notices to people who are not the business (issue 17, point 2): the operators' outbox `operatornotice` becomes
`notice`, which also carries the ambassador's callback e-mail (queued with the callback request, sent by the
dispatcher). `purpose` is now `kind`; a notice names the business and campaign it is about, when there is one.
Existing alerts are kept, with their ids.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns both tables share (`purpose` is `kind` in the new one).
SHARED = ("id", "cause_key", "recipient", "subject", "body", "due_at", "status", "attempts", "lease_owner",
          "lease_until", "sent_at", "last_error", "created_at")


def _outbox(name: str, kind_column: str, *extra: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(kind_column, sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("cause_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("recipient", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False),
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        *extra,
        sa.Column("due_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("cause_key", "recipient", name=f"uq_{name}_cause_recipient"),
    )
    op.create_index(f"ix_{name}_due", name, ["status", "due_at"])


def _copy(source: str, source_kind: str, target: str, target_kind: str) -> None:
    columns = ", ".join(SHARED)
    op.execute(f"INSERT INTO {target} ({target_kind}, {columns}) SELECT {source_kind}, {columns} FROM {source}")
    if op.get_bind().dialect.name == "postgresql":  # the rows came with their ids: the next one follows them
        op.execute(f"SELECT setval(pg_get_serial_sequence('{target}', 'id'), COALESCE(MAX(id), 0) + 1, false) "
                   f"FROM {target}")


def upgrade() -> None:
    _outbox("notice", "kind",
            sa.Column("business_id", sa.Integer(), sa.ForeignKey("business.id"), nullable=True),
            sa.Column("campaign_id", sa.Integer(), sa.ForeignKey("campaign.id"), nullable=True))
    op.create_index(op.f("ix_notice_business_id"), "notice", ["business_id"])
    _copy("operatornotice", "purpose", "notice", "kind")
    op.drop_table("operatornotice")


def downgrade() -> None:
    # The ambassadors' callback e-mails had no table before: they are dropped with `notice`.
    _outbox("operatornotice", "purpose")
    op.execute("DELETE FROM notice WHERE kind = 'callback_request'")
    _copy("notice", "kind", "operatornotice", "purpose")
    op.drop_table("notice")
