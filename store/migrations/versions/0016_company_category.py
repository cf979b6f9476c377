"""Company category and collective procedures (issue 13, points 7 and 8): business.categorie_entreprise (the legal
unit's INSEE category, which decides the e-invoicing dates); BODACC collective procedures stored as
critical_period become collective_procedure (a court procedure is not a sales moment), their businesses take that
stage, and the messages still planned from them are cancelled

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("categorie_entreprise", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True)
        )
    # BODACC "collective" announcements were stored as critical_period (and liquidations as closure, unchanged).
    op.execute(
        "UPDATE triggerevent SET type = 'collective_procedure' "
        "WHERE source = 'bodacc' AND type = 'critical_period'"
    )
    # A sales message still waiting for a business under a court procedure does not leave.
    op.execute(
        "UPDATE message SET status = 'cancelled', last_error = 'collective procedure: not a sales moment' "
        "WHERE status = 'planned' AND enrollment_id IN (SELECT enrollment.id FROM enrollment JOIN triggerevent "
        "ON triggerevent.id = enrollment.trigger_event_id WHERE triggerevent.type = 'collective_procedure')"
    )
    op.execute(
        "UPDATE business SET lifecycle_stage = 'collective_procedure' WHERE lifecycle_stage = 'critical_period' "
        "AND EXISTS (SELECT 1 FROM triggerevent t WHERE t.business_id = business.id "
        "AND t.type = 'collective_procedure') "
        "AND NOT EXISTS (SELECT 1 FROM triggerevent t WHERE t.business_id = business.id "
        "AND t.type = 'critical_period')"
    )


def downgrade() -> None:
    op.execute(
        "UPDATE business SET lifecycle_stage = 'critical_period' WHERE lifecycle_stage = 'collective_procedure'"
    )
    op.execute(
        "UPDATE triggerevent SET type = 'critical_period' "
        "WHERE source = 'bodacc' AND type = 'collective_procedure'"
    )
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("categorie_entreprise")
