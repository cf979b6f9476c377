"""Rows found by what a person types at the command line (a campaign's name, a business's SIRET), and the small
tables the CLI lists whole (campaigns, partners, dashboard accounts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from store.models import Business, Campaign, Partner, UserAccount

CAMPAIGNS = Campaign.__table__
BUSINESSES = Business.__table__


def campaign_named(conn: Connection, name: str) -> Any | None:
    """The campaign row called `name`, or None."""
    return conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.name == name)).first()


def business_by_siret(conn: Connection, siret: str) -> Any | None:
    """The business row with this SIRET (14 digits, no spaces), or None."""
    return conn.execute(select(BUSINESSES).where(BUSINESSES.c.siret == siret)).first()


def _all(conn: Connection, table: Table) -> list[Any]:
    return list(conn.execute(select(table).order_by(table.c.id)).all())


def campaign_rows(conn: Connection) -> list[Any]:
    """Every campaign, oldest first."""
    return _all(conn, CAMPAIGNS)


def partner_rows(conn: Connection) -> list[Any]:
    """Every partner, oldest first."""
    return _all(conn, Partner.__table__)


def user_rows(conn: Connection) -> list[Any]:
    """Every dashboard account, oldest first."""
    return _all(conn, UserAccount.__table__)
