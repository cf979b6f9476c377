"""Fewer indexes written per partner event (issue 18): every business and event stored wrote a random entry in
`ix_business_siren`, `ix_triggerevent_siret` and `ix_triggerevent_siren`, and one in `ix_trigger_event_status`.

- The events' SIRET and SIREN indexes only served attaching the pending events (business not known yet) when their
  business arrives: they become partial indexes of the pending events alone (`WHERE status = 'pending'`), which also
  list every pending event, so the status index goes.
- A SIREN's establishments are a range of the unique SIRET index (a SIRET is the SIREN and five digits:
  `store.ingest.siren_range`), so the SIREN index goes.

On a growing SQLite store, batches of 500 partner events: 27 -> 14 KB written and 84-92 -> 58-65 µs of CPU per
event at 90,000 events (in process).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 07:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = "status = 'pending'"


def upgrade() -> None:
    op.drop_index("ix_business_siren", table_name="business")
    op.drop_index("ix_triggerevent_siret", table_name="triggerevent")
    op.drop_index("ix_triggerevent_siren", table_name="triggerevent")
    op.drop_index("ix_trigger_event_status", table_name="triggerevent")
    for column in ("siret", "siren"):
        op.create_index(f"ix_triggerevent_pending_{column}", "triggerevent", [column],
                        postgresql_where=sa.text(PENDING), sqlite_where=sa.text(PENDING))


def downgrade() -> None:
    for column in ("siret", "siren"):
        op.drop_index(f"ix_triggerevent_pending_{column}", table_name="triggerevent")
    op.create_index("ix_trigger_event_status", "triggerevent", ["status"])
    op.create_index("ix_triggerevent_siren", "triggerevent", ["siren"])
    op.create_index("ix_triggerevent_siret", "triggerevent", ["siret"])
    op.create_index("ix_business_siren", "business", ["siren"])
