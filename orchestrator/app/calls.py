"""Call tasks, the application side: what the call channel must know before it decides a task (read for a batch),
the tasks it decided (queued with the outcome of their messages), and the outcome of each call an adviser records.

The rules are `integrations.call_rules` (when a call is allowed), the SQL is `store.call_tasks`; the dispatcher
and the dashboard's call route come here (`record_call`: one unit of work per form posted).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from integrations.base import OutgoingMessage
from integrations.call_rules import (
    ANSWERED,
    MAX_ATTEMPTS,
    NO_ANSWER,
    OUTCOMES,
    REFUSED,
    CallAttempt,
    holiday_subdivision,
    next_call_slot,
)
from integrations.call_task import CallFacts, business_id_of
from orchestrator.app.bootstrap import App
from orchestrator.core.moments import as_utc
from orchestrator.core.outcomes import SendResult
from orchestrator.core.phones import InvalidNumber, normalise_number
from store import accounts, call_tasks
from store.conversions import record_task_adoption, record_task_outcome
from store.privacy import withdraw_for_task

__all__ = ["OUTCOMES", "call_facts", "queue_tasks", "record_attempt", "record_call"]


def _number(text: str) -> str:
    try:
        return normalise_number(text) if text else ""
    except InvalidNumber:
        return ""


def _attempts(pairs: Sequence[tuple[dt.datetime, str | None]]) -> tuple[CallAttempt, ...]:
    return tuple(CallAttempt(at, outcome or NO_ANSWER) for at, outcome in pairs)


def call_facts(conn: Connection, messages: Sequence[OutgoingMessage]) -> dict[int, CallFacts]:
    """What the store knows of each call message's business and number, by message id: the consents, the
    business's département and time zone, the calls already made to the number, its open task, the task already
    queued for the message. One query of each kind for the whole batch."""
    phones = {m.message_id: _number(m.recipient) for m in messages}
    numbers = set(phones.values()) - {""}
    businesses = call_tasks.businesses_to_call(
        conn, {b for b in (business_id_of(m.meta) for m in messages) if b is not None})
    history = call_tasks.history_for(conn, numbers)
    open_tasks = call_tasks.open_tasks_by_phone(conn, numbers)
    queued = call_tasks.tasks_of_messages(conn, list(phones))
    facts = {}
    for message in messages:
        phone = phones[message.message_id]
        business = businesses.get(business_id_of(message.meta) or -1)
        known = (CallFacts(business.consent, _number(business.phone), business.departement, business.timezone,
                           business.numbers) if business is not None else CallFacts())
        facts[message.message_id] = replace(known, history=_attempts(history.get(phone, [])),
                                            open_task=open_tasks.get(phone), queued_task=queued.get(message.message_id))
    return facts


def queue_tasks(conn: Connection, results: Sequence[SendResult]) -> list[SendResult]:
    """Queue the tasks the call channel decided (`SendResult.record`); each of their answers then names its task
    (`provider_id`). Other answers pass through unchanged."""
    ids = call_tasks.queue_tasks(conn, [r.record for r in results if r.record is not None])
    return [replace(r, provider_id=str(ids.get(r.message_id, ""))) if r.record is not None else r for r in results]


def record_attempt(
    conn: Connection,
    task_id: int,
    *,
    outcome: str,
    at: dt.datetime,
    note: str | None = None,
    zone: ZoneInfo,
) -> str:
    """Record one call attempt and return the task's new status (open, done, refused or no_answer); the next
    allowed slot is counted in `zone` (the deployment's).

    done and refused close the task; no_answer reschedules it at the next allowed slot, or closes it as
    no_answer once 4 attempts are spent or no slot is left.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call outcome {outcome!r} (expected one of {', '.join(OUTCOMES)})")
    row = call_tasks.task_row(conn, task_id)
    at = as_utc(at)
    values: dict[str, Any] = {
        "history": [*(row.history or []), {"at": at.isoformat(), "outcome": outcome}],
        "attempts": row.attempts + 1,
        "updated_at": at,
        "outcome_note": note if note is not None else row.outcome_note,
    }
    if outcome == ANSWERED:
        values["status"] = "done"
    elif outcome == REFUSED:
        values["status"] = "refused"
    else:
        departement = None
        if row.business_id is not None:
            # The business's own département gives its holidays (Alsace-Moselle, overseas).
            business = call_tasks.businesses_to_call(conn, {row.business_id}).get(row.business_id)
            departement = business.departement if business else None
        others = _attempts(call_tasks.history_for(conn, [row.phone]).get(row.phone, []))
        # This task's own attempts are already in `others` except the one being recorded now.
        slot = next_call_slot(at, zone, [*others, CallAttempt(at, outcome)],
                              subdiv=holiday_subdivision(departement))
        if row.attempts + 1 >= MAX_ATTEMPTS or slot is None:
            values["status"] = "no_answer"
        else:
            values["status"] = "open"
            values["due_at"] = as_utc(slot)
    call_tasks.update_task(conn, task_id, values)
    return values["status"]


def record_call(app: App, scope: accounts.Scope, task_id: int, *, outcome: str, met: bool = False,
                note: str | None = None, adopted: str | None = None) -> bool:
    """Record a call an adviser or ambassador made, in one unit of work: the attempt (`record_attempt`), a meeting
    agreed (`met`) as `ambassador_met`, "a commencé à utiliser ..." (`adopted`, an adoption category) as
    `tool_adopted`, and a refusal on the phone as the withdrawal of the call consent given to the campaign's owner.
    False (nothing written) when `scope` does not see the task."""
    with app.transaction() as unit:
        if accounts.task(unit.conn, scope, task_id) is None:
            return False
        record_attempt(unit.conn, task_id, outcome=outcome, at=unit.now, note=note, zone=unit.zone)
        record_task_outcome(unit.conn, task_id, met=met, now=unit.now)
        if adopted:
            record_task_adoption(unit.conn, task_id, adopted, now=unit.now)
        if outcome == REFUSED:  # one word on the phone withdraws the call consent given to that owner
            withdraw_for_task(unit.conn, task_id, f"call:{task_id}", unit.now)
    return True
