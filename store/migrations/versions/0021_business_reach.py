"""The reachability of a business in the segment index (issue 18, point 4): `business.reach`, which contact points a
business has (email 1, phone 2, postal address 4), is a column the database computes from the contact columns, and
`ix_business_dep_family` becomes (departement_code, metier_family, reach): a national "reachable" segment count reads
that index alone instead of the whole table.

PostgreSQL stores the column (an index needs it stored; adding it rewrites the table once); SQLite computes it on
read (ALTER TABLE can only add a virtual generated column there) and the index holds its values. A later SQLite
batch migration that rebuilds `business` must drop `reach` first and add it back (SQLite refuses to copy into a
generated column).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REACH_SQL = ("CASE WHEN email IS NOT NULL THEN 1 ELSE 0 END + CASE WHEN phone IS NOT NULL THEN 2 ELSE 0 END + "
             "CASE WHEN street IS NOT NULL AND postal_code IS NOT NULL AND city IS NOT NULL THEN 4 ELSE 0 END")


def upgrade() -> None:
    stored = True if op.get_bind().dialect.name == "postgresql" else None  # None: SQLite's default, virtual
    op.add_column("business", sa.Column("reach", sa.SmallInteger(), sa.Computed(REACH_SQL, persisted=stored)))
    op.drop_index("ix_business_dep_family", table_name="business")
    op.create_index("ix_business_dep_family", "business", ["departement_code", "metier_family", "reach"])


def downgrade() -> None:
    op.drop_index("ix_business_dep_family", table_name="business")
    op.create_index("ix_business_dep_family", "business", ["departement_code", "metier_family"])
    op.drop_column("business", "reach")
