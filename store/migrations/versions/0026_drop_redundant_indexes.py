"""Three indexes that another index already serves (issue 18, point 4): `ix_enrollment_campaign_id` (the unique
constraint leads with campaign_id), `ix_enrollment_business_id` (the business/moment and business/enrolled_at
indexes lead with business_id) and `ix_message_campaign_id` (the campaign/enrollment index). Every enrolment and
message planned wrote them: three of the fifteen index entries of an enrolment with its message and history.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 01:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REDUNDANT = (("enrollment", "ix_enrollment_campaign_id", "campaign_id"),
             ("enrollment", "ix_enrollment_business_id", "business_id"),
             ("message", "ix_message_campaign_id", "campaign_id"))


def upgrade() -> None:
    for table, name, _column in REDUNDANT:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for table, name, column in REDUNDANT:
        op.create_index(name, table, [column])
