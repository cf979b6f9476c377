"""What newly attached trigger events change on their businesses, written in the transaction that stores them.

The decision is pure (`triggers.lifecycle.event_effects`: the stage each business moves to, the businesses a
closure stops); this module writes it. Shared by the file ingesters and the partner intake (orchestrator/app/):
the life-cycle stage follows the event, and a closure stops all outreach (planned messages are cancelled). A
BODACC liquidation judgment arrives as a `closure`, so it ends outreach the same way. The ageing of stored
stages (`refresh_lifecycle`) is here too: the same column, changed by time instead of an event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence

from sqlalchemy import case, select, update
from sqlalchemy.engine import Connection

from store.driver import driver_sql
from store.models import Business, Message, TriggerEvent
from store.sql import chunks

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__
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


def write_event_effects(conn: Connection, stages: Mapping[int, str], closing: Collection[int]) -> None:
    """Set each business's new stage; close the `closing` ones and cancel their planned messages."""
    # One UPDATE per (stage, closed) group rather than per business: a batch of 500 partner events would
    # otherwise cost 500 statements. Plain SQL: building the statement cost more than running it for the
    # single-event requests of the partner API.
    groups: dict[tuple[str, bool], list[int]] = {}
    for business_id, stage in stages.items():
        groups.setdefault((stage, business_id in closing), []).append(business_id)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for (stage, closed), ids in groups.items():
        for part in chunks(ids, 900):
            marks = ", ".join([mark] * len(part))
            if closed:
                sql = f"UPDATE business SET lifecycle_stage = {mark}, state = 'closed' WHERE id IN ({marks})"
            else:
                # A late event (a judgment published after the liquidation, a partner's note) never gives a
                # closed business a live stage again: only Sirene reopens one.
                sql = f"UPDATE business SET lifecycle_stage = {mark} WHERE id IN ({marks}) AND state != 'closed'"
            driver_sql(conn, sql, (stage, *part))
    if closing:
        cancel_planned_messages(conn, closing, "business closed")


def refresh_lifecycle(conn: Connection, young_since: dt.date,
                      windows: Sequence[tuple[str, dt.date, Sequence[str]]]) -> int:
    """Age the stages that time changes (`triggers.lifecycle.stage_windows`): a business created before
    `young_since` grows out of `creation`; a stage whose events (per window: stage, since, event types) are all
    older than its window falls back to the stage its age gives. Returns the number of businesses changed."""
    b = BUSINESS
    changed = conn.execute(
        update(b).where(b.c.lifecycle_stage == "creation", b.c.creation_date < young_since)
        .values(lifecycle_stage="consolidation")
    ).rowcount or 0
    by_age = case((b.c.creation_date >= young_since, "creation"), (b.c.creation_date.is_not(None), "consolidation"),
                  else_=None)
    for stage, since, kinds in windows:
        recent = (select(EVENTS.c.id)
                  .where(EVENTS.c.business_id == b.c.id, EVENTS.c.type.in_(kinds), EVENTS.c.occurred_on >= since)
                  .exists())
        changed += conn.execute(
            update(b).where(b.c.lifecycle_stage == stage, ~recent).values(lifecycle_stage=by_age)
        ).rowcount or 0
    return changed
