"""Details a partner sent that were not applied (a commune over Sirene's, a name over a known one): kept as
proposals someone can look at, never applied by themselves."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import Connection

from store.models import BusinessProposal
from store.sql import chunks

PROPOSALS = BusinessProposal.__table__
_WIDTH = 200  # the column's length: a longer name is kept cut rather than refused


def record_proposals(conn: Connection, proposals: Sequence[dict], *, now: dt.datetime) -> int:
    """Store proposals (business_id, partner_id, event_id, field, current_value, proposed_value) at `now`; the
    same value proposed again by the same partner for the same field is kept once. Returns how many were new."""
    rows, seen = [], set()
    for p in proposals:
        row = {**p, "current_value": None if p["current_value"] is None else str(p["current_value"])[:_WIDTH],
               "proposed_value": str(p["proposed_value"])[:_WIDTH], "created_at": now}
        key = (row["business_id"], row["partner_id"], row["field"], row["proposed_value"])
        if key not in seen:
            seen.add(key)
            rows.append(row)
    known: set[tuple] = set()
    for part in chunks(sorted({r["business_id"] for r in rows}), 900):
        known.update(tuple(r) for r in conn.execute(
            select(PROPOSALS.c.business_id, PROPOSALS.c.partner_id, PROPOSALS.c.field, PROPOSALS.c.proposed_value)
            .where(PROPOSALS.c.business_id.in_(part))))
    rows = [r for r in rows if (r["business_id"], r["partner_id"], r["field"], r["proposed_value"]) not in known]
    if rows:
        conn.execute(PROPOSALS.insert(), rows)
    return len(rows)
