"""The call-task queue in the store: what the call channel must know before it decides a task, the tasks it
decides, the advisers' lists, each attempt's record.

The rules (when a call is allowed, what an attempt changes) are not here: `integrations.call_rules` decides,
`orchestrator.app.calls` reads and applies through these functions.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from orchestrator.core.moments import as_utc
from store.models import Business, CallTask, Territory
from store.privacy import live_call_numbers
from store.report import TASK_STATUS, label_for
from store.sql import insert_for

TASKS = CallTask.__table__
BUSINESSES = Business.__table__
TERRITORIES = Territory.__table__


@dataclass(frozen=True, slots=True)
class CallBusiness:
    """What the store says of a business about calling it."""

    consent: bool = False  # business.phone_consent: agreed to be called on its own number
    phone: str = ""  # its own number, as stored
    departement: str | None = None
    timezone: str | None = None  # its département's time zone (overseas clocks)
    numbers: frozenset[str] = frozenset()  # numbers with a live specific call consent (store.privacy)


def businesses_to_call(conn: Connection, business_ids: Collection[int]) -> dict[int, CallBusiness]:
    """Each business's call consent, number, département and time zone, by id."""
    if not business_ids:
        return {}
    rows = conn.execute(
        select(BUSINESSES.c.id, BUSINESSES.c.phone, BUSINESSES.c.phone_consent, BUSINESSES.c.departement_code,
               TERRITORIES.c.timezone)
        .select_from(BUSINESSES.outerjoin(TERRITORIES, (TERRITORIES.c.level == "departement")
                                          & (TERRITORIES.c.code == BUSINESSES.c.departement_code)))
        .where(BUSINESSES.c.id.in_(set(business_ids)))
    )
    # A specific consent (given to an owner, for calls, to that number) counts too; that it covers the
    # campaign's owner is checked by the dispatcher before the batch reaches the channel.
    specific = live_call_numbers(conn, set(business_ids))
    return {business_id: CallBusiness(bool(consent), phone or "", departement, zone,
                                      frozenset(specific.get(business_id, ())))
            for business_id, phone, consent, departement, zone in rows}


def history_for(conn: Connection, phones: Collection[str]) -> dict[str, list[tuple[dt.datetime, str | None]]]:
    """Every call attempt already made to each number, across all tasks (the rules count per number): (when,
    outcome) pairs, `when` aware UTC."""
    found: dict[str, list[tuple[dt.datetime, str | None]]] = defaultdict(list)
    if not phones:
        return found
    for phone, history in conn.execute(select(TASKS.c.phone, TASKS.c.history).where(TASKS.c.phone.in_(set(phones)))):
        for entry in history or ():
            found[phone].append((as_utc(dt.datetime.fromisoformat(entry["at"])), entry.get("outcome")))
    return found


def open_tasks_by_phone(conn: Connection, phones: Collection[str]) -> dict[str, int]:
    """The open task of each number that has one."""
    if not phones:
        return {}
    return dict(conn.execute(select(TASKS.c.phone, TASKS.c.id)
                             .where(TASKS.c.phone.in_(set(phones)), TASKS.c.status == "open")).all())


def tasks_of_messages(conn: Connection, message_ids: Collection[int]) -> dict[int, int]:
    """The task already queued for each of these outbox messages, by message id."""
    if not message_ids:
        return {}
    return dict(conn.execute(select(TASKS.c.message_id, TASKS.c.id)
                             .where(TASKS.c.message_id.in_(set(message_ids)))).all())


def queue_tasks(conn: Connection, tasks: Sequence[Mapping[str, Any]]) -> dict[int, int]:
    """Insert these tasks (columns of `calltask`; one per outbox message, a repeat is ignored); returns the
    task id of each message."""
    if not tasks:
        return {}
    conn.execute(insert_for(conn, TASKS).on_conflict_do_nothing(index_elements=["message_id"]), list(tasks))
    return tasks_of_messages(conn, [task["message_id"] for task in tasks])


def due_tasks(conn: Connection, *, now: dt.datetime, assignee: str | None = None, limit: int = 50) -> list[Any]:
    """Open tasks whose time has come, oldest first (for one assignee, or all)."""
    query = (select(TASKS).where(TASKS.c.status == "open", TASKS.c.due_at <= as_utc(now))
             .order_by(TASKS.c.due_at, TASKS.c.id).limit(limit))
    if assignee is not None:
        query = query.where(TASKS.c.assignee == assignee)
    return list(conn.execute(query).all())


def task_row(conn: Connection, task_id: int) -> Any:
    """One task's row (raises when there is none)."""
    return conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()


def update_task(conn: Connection, task_id: int, values: Mapping[str, Any]) -> None:
    """Write a task's new state (status, due_at, attempts, history, note...)."""
    conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(**values))


def call_tasks(conn: Connection, clause, *, open_only: bool = False, limit: int | None = 500) -> list[dict[str, Any]]:
    """Call tasks matching a scope clause, due first, with the business's name (the dashboard's list)."""
    query = (
        select(TASKS, BUSINESSES.c.name.label("business_name"), BUSINESSES.c.commune_code)
        .select_from(TASKS.outerjoin(BUSINESSES, BUSINESSES.c.id == TASKS.c.business_id))
        .where(clause)
        .order_by(TASKS.c.status != "open", TASKS.c.due_at, TASKS.c.id)
    )
    if open_only:
        query = query.where(TASKS.c.status == "open")
    if limit:
        query = query.limit(limit)
    return [
        {
            "id": r.id,
            "business_id": r.business_id,
            "business": r.business_name or "",
            "commune": label_for("commune_code", r.commune_code),
            "phone": r.phone,
            "due_at": r.due_at,
            "status": TASK_STATUS.get(r.status, r.status),
            "open": r.status == "open",
            "attempts": r.attempts,
            "note": r.outcome_note or "",
            "script": r.script,
            "assignee": r.assignee,
        }
        for r in conn.execute(query)
    ]
