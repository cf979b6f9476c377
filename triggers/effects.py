"""What a newly attached trigger event changes on its business, in the transaction that stores it.

Shared by the file ingesters (orchestrator/app/ingest.py) and the partner intake (orchestrator/app/intake.py):
the life-cycle stage follows the event, and a closure stops all outreach (planned messages are cancelled).
A BODACC liquidation judgment arrives as a `closure` (triggers/bodacc.py), so it ends outreach the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Connection

from store.models import Business, Message
from store.sql import chunks
from triggers.lifecycle import lifecycle_stage

BUSINESS = Business.__table__
MESSAGES = Message.__table__


def cancel_planned_messages(conn: Connection, business_ids: Iterable[int], reason: str) -> int:
    """Cancel messages not yet claimed for these businesses (a closure stops all outreach)."""
    ids = sorted(set(business_ids))
    total = 0
    for part in chunks(ids, 900):
        result = conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.business_id.in_(part), MESSAGES.c.status == "planned")
            .values(status="cancelled", last_error=reason)
        )
        total += result.rowcount or 0
    return total


def stage_for(event_type: str, on: dt.date, today: dt.date) -> str | None:
    return lifecycle_stage(today=today, creation_date=None, state=None, events=[(event_type, on)])


def apply_event_effects(conn: Connection, events: Iterable[tuple[int, str, Any]], today: dt.date) -> None:
    """What a newly attached event changes on its business: life-cycle stage, and closure stops outreach."""
    stages: dict[int, tuple[dt.date, str]] = {}
    closing: set[int] = set()
    for business_id, kind, on in events:
        day = on if isinstance(on, dt.date) else dt.date.fromisoformat(str(on)[:10])
        if kind == "closure":
            closing.add(business_id)
        stage = stage_for(kind, day, today)
        if stage is not None and (business_id not in stages or day >= stages[business_id][0]):
            stages[business_id] = (day, stage)
    # One UPDATE per (stage, closed) group rather than per business: a batch of 500 partner events would
    # otherwise cost 500 statements.
    groups: dict[tuple[str, bool], list[int]] = {}
    for business_id, (_day, stage) in stages.items():
        groups.setdefault((stage, business_id in closing), []).append(business_id)
    for (stage, closed), ids in groups.items():
        values: dict[str, Any] = {"lifecycle_stage": stage}
        if closed:
            values["state"] = "closed"
        for part in chunks(ids, 900):
            stmt = update(BUSINESS).where(BUSINESS.c.id.in_(part))
            if not closed:
                # A late event (a judgment published after the liquidation, a partner's note) never gives a closed
                # business a live stage again: only Sirene reopens one.
                stmt = stmt.where(BUSINESS.c.state != "closed")
            conn.execute(stmt.values(**values))
    if closing:
        cancel_planned_messages(conn, closing, "business closed")
