"""The business table's EPCI and région indexes go (issue 18): every business written paid a random insert into
each (a partner's event creating a business, a Sirene update), and a national first load a sort of 1.9 million
rows for each. A look-up by EPCI goes through its communes and one by région through its départements
(`store.segment_sql.place_clause`), both indexed, with the stored code still compared.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 10:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (("ix_business_epci_code", "epci_code"), ("ix_business_region_code", "region_code"))


def upgrade() -> None:
    for name, _column in DROPPED:
        op.drop_index(name, table_name="business")


def downgrade() -> None:
    for name, column in DROPPED:
        op.create_index(name, "business", [column])
