"""Legal form (issue 18, point 3): business.categorie_juridique, the legal unit's INSEE catégorie juridique
(StockUniteLegale categorieJuridiqueUniteLegale, four digits), by SIREN; segments select on it

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: an ALTER that touches no row, even on a national store (filled by the next legal-unit file).
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("categorie_juridique", sqlmodel.sql.sqltypes.AutoString(length=4), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("business", schema=None) as batch_op:
        batch_op.drop_column("categorie_juridique")
