"""Two partial indexes of the few enrollments each planning batch looks for (issue 18): a scheduled occurrence
plans 400,000 businesses in 89 batches, and every batch also looked for the "pas pour moi" answers whose message
is due (`store.planning.due_answer_messages`: a sequential scan of every enrollment, 31 ms a batch at the end)
and for the control groups whose diagnostic is due (`store.rediagnostic.plan_rediagnostics`, one query per
campaign: a scan of a whole index, 11 ms each). Enrollments without an answer due, and in the treatment arm,
have no entry in either: the occurrence's 400,000 write none.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANSWER_DUE = "answer_due_at IS NOT NULL"
HOLDOUT = "arm = 'holdout'"


def upgrade() -> None:
    op.create_index("ix_enrollment_answer_due", "enrollment", ["answer_due_at"],
                    postgresql_where=sa.text(ANSWER_DUE), sqlite_where=sa.text(ANSWER_DUE))
    op.create_index("ix_enrollment_holdout", "enrollment", ["campaign_id", "enrolled_at"],
                    postgresql_where=sa.text(HOLDOUT), sqlite_where=sa.text(HOLDOUT))


def downgrade() -> None:
    op.drop_index("ix_enrollment_holdout", table_name="enrollment")
    op.drop_index("ix_enrollment_answer_due", table_name="enrollment")
