"""Call tasks: a queue of calls for advisers and ambassadors, each with its script, at allowed times only.

"Sending" a call message inserts a row in the `calltask` table (idempotent on the outbox message id)
whose `due_at` is the next moment the law allows a call (`integrations.call_rules`); an adviser's screen
lists the due tasks (`due_tasks`) and records each attempt (`record_attempt`), which reschedules or
closes the task.

Who may be called: only a number with a consent or an existing relationship. The message meta says so
(`meta["consent"]` or `meta["relationship"]` true); without it, the business row is read again at send
time (`business.phone_consent` for `meta["business_id"]`, the number being the business's own); anything
else is PERMANENT. Other meta read: `ambassador_id` (the task goes to that ambassador, else to the shared
"adviser" queue, or `meta["assignee"]`), `departement` and `timezone` (else the business's département
and its time zone from the store: regional public holidays, overseas clocks).

Settings (read by the composition root, passed as constructor arguments):

    DECLIC_DATABASE_URL   the store holding the queue (the same as everything else)
    DECLIC_TIMEZONE       local time of the calls when the message does not give one (Europe/Paris)

Exactly once: `on_handoff(message_id)` is called for every task before the batch's insert commits; a
task whose lease was lost is not inserted (ABANDONED), and the unique message id makes a repeat harmless.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from integrations._settings import setting, store_engine
from integrations.base import Answer, Handoff, OutgoingMessage, register
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
from integrations.phones import InvalidNumber, normalise_number
from orchestrator.core.outcomes import Outcome, SendResult
from store.models import Business, CallTask, Territory
from store.sql import insert_for

__all__ = [
    "CallAttempt",
    "CallTaskChannel",
    "due_tasks",
    "history_for",
    "next_call_slot",
    "record_attempt",
]

TASKS = CallTask.__table__
BUSINESSES = Business.__table__
TERRITORIES = Territory.__table__
DEFAULT_ASSIGNEE = "adviser"


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _attempts(rows: Sequence[Any]) -> list[CallAttempt]:
    attempts = []
    for history in rows:
        for entry in history or ():
            attempts.append(
                CallAttempt(_utc(dt.datetime.fromisoformat(entry["at"])), entry.get("outcome", NO_ANSWER))
            )
    return attempts


def history_for(conn: Connection, phones: Sequence[str]) -> dict[str, list[CallAttempt]]:
    """Every call attempt already made to each number, across all tasks (the rules count per number)."""
    found: dict[str, list[CallAttempt]] = defaultdict(list)
    if not phones:
        return found
    for phone, history in conn.execute(
        select(TASKS.c.phone, TASKS.c.history).where(TASKS.c.phone.in_(set(phones)))
    ):
        found[phone].extend(_attempts([history]))
    return found


def _open_task_by_phone(conn: Connection, phones: Sequence[str]) -> dict[str, int]:
    if not phones:
        return {}
    rows = conn.execute(
        select(TASKS.c.phone, TASKS.c.id).where(TASKS.c.phone.in_(set(phones)), TASKS.c.status == "open")
    )
    return dict(rows.all())


@dataclass(frozen=True, slots=True)
class _Known:
    """What the store says about a message's business at send time."""

    consent: bool = False
    phone: str = ""
    departement: str | None = None
    timezone: str | None = None
    numbers: frozenset[str] = frozenset()  # numbers with a live specific call consent (store.privacy)


def _business_facts(conn: Connection, business_ids: set[int]) -> dict[int, _Known]:
    if not business_ids:
        return {}
    rows = conn.execute(
        select(
            BUSINESSES.c.id,
            BUSINESSES.c.phone,
            BUSINESSES.c.phone_consent,
            BUSINESSES.c.departement_code,
            TERRITORIES.c.timezone,
        )
        .select_from(
            BUSINESSES.outerjoin(
                TERRITORIES,
                (TERRITORIES.c.level == "departement")
                & (TERRITORIES.c.code == BUSINESSES.c.departement_code),
            )
        )
        .where(BUSINESSES.c.id.in_(business_ids))
    )
    # A specific consent (store.privacy: given to an owner, for calls, to that number) counts too; that it
    # covers the campaign's owner is checked by the dispatcher before the batch reaches this channel.
    from store.privacy import live_call_numbers

    specific = live_call_numbers(conn, business_ids)
    known = {}
    for business_id, phone, consent, departement, zone in rows:
        try:
            normalised = normalise_number(phone) if phone else ""
        except InvalidNumber:
            normalised = ""
        known[business_id] = _Known(bool(consent), normalised, departement, zone,
                                    frozenset(specific.get(business_id, ())))
    return known


def _business_id(meta: dict[str, Any]) -> int | None:
    value = meta.get("business_id")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _has_consent(meta: dict[str, Any], phone: str, known: _Known | None) -> bool:
    if meta.get("consent") or meta.get("relationship"):
        return True
    # The consent recorded for the business covers its own number only; a specific one, the number agreed on.
    return known is not None and ((known.consent and known.phone == phone) or phone in known.numbers)


def _assignee(meta: dict[str, Any]) -> str:
    if meta.get("assignee"):
        return str(meta["assignee"])[:80]
    if meta.get("ambassador_id") not in (None, ""):
        return f"ambassador:{meta['ambassador_id']}"
    return DEFAULT_ASSIGNEE


class CallTaskChannel:
    """Queues call tasks in the store; SENT means "queued for a person to call at an allowed time"."""

    name = "call"

    def __init__(
        self,
        *,
        engine: Engine,
        timezone: str = "Europe/Paris",
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.engine = engine
        self.timezone = timezone
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))

    @classmethod
    def from_settings(
        cls, settings: Any, clock: Callable[[], dt.datetime] | None = None, engine: Engine | None = None
    ) -> CallTaskChannel:
        """The channel on the composition root's engine and clock when given, else on the settings' store."""
        store = store_engine(settings, engine)
        if store is None:
            raise ValueError("file d'appels sans base de données : DECLIC_DATABASE_URL ou DECLIC_HOME")
        return cls(engine=store, timezone=setting(settings, "timezone", "Europe/Paris"), clock=clock)

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """Queue one task per message; refused ones (no consent, bad number, no script) are PERMANENT."""
        results: dict[int, SendResult] = {}
        try:
            with self.engine.connect() as conn:
                known = _business_facts(
                    conn, {b for b in (_business_id(m.meta) for m in batch) if b is not None}
                )
        except Exception as exc:  # the store is down: nothing can be checked nor queued
            detail = f"file d'appels indisponible : {type(exc).__name__}"
            return [SendResult(m.message_id, Outcome.TRANSIENT, detail) for m in batch]
        candidates: list[tuple[int, OutgoingMessage, str, _Known | None]] = []
        for position, message in enumerate(batch):
            try:
                phone = normalise_number(message.recipient)
            except InvalidNumber as exc:
                results[position] = SendResult(message.message_id, Outcome.PERMANENT, exc.reason)
                continue
            facts = known.get(_business_id(message.meta) or -1)
            if not _has_consent(message.meta, phone, facts):
                results[position] = SendResult(
                    message.message_id,
                    Outcome.PERMANENT,
                    "appel interdit : ni consentement ni relation existante pour ce numéro",
                )
                continue
            if not message.body.strip():
                results[position] = SendResult(message.message_id, Outcome.PERMANENT, "script d'appel vide")
                continue
            candidates.append((position, message, phone, facts))

        if candidates:
            try:
                results.update(self._queue(candidates, on_handoff))
            except Exception as exc:  # the store is down or locked: nothing was queued, try again later
                for position, message, _, _ in candidates:
                    if position not in results:
                        results[position] = SendResult(
                            message.message_id,
                            Outcome.TRANSIENT,
                            f"file d'appels indisponible : {type(exc).__name__}",
                        )
        return [results[position] for position in range(len(batch))]

    def _queue(
        self, candidates: list[tuple[int, OutgoingMessage, str, _Known | None]], on_handoff: Handoff | None
    ) -> dict[int, SendResult]:
        now = _utc(self.clock())
        out: dict[int, SendResult] = {}
        phones = [phone for _, _, phone, _ in candidates]
        with self.engine.connect() as conn:
            history = history_for(conn, phones)
            open_tasks = _open_task_by_phone(conn, phones)
            existing = dict(
                conn.execute(
                    select(TASKS.c.message_id, TASKS.c.id).where(
                        TASKS.c.message_id.in_([m.message_id for _, m, _, _ in candidates])
                    )
                ).all()
            )

        rows: list[tuple[int, OutgoingMessage, dt.datetime, dict[str, Any]]] = []
        queued_phones: set[str] = set()
        for position, message, phone, facts in candidates:
            if message.message_id in existing:  # a retry of a batch that was queued: nothing more to do
                out[position] = SendResult(
                    message.message_id,
                    Outcome.SENT,
                    "tâche déjà dans la file",
                    str(existing[message.message_id]),
                )
                continue
            if phone in open_tasks or phone in queued_phones:
                # One open task per number: two would mean two calls in the same slot.
                task = open_tasks.get(phone)
                detail = (
                    f"un appel est déjà prévu pour ce numéro (tâche {task})" if task else "appel déjà prévu"
                )
                out[position] = SendResult(message.message_id, Outcome.SENT, detail, str(task or ""))
                continue
            meta = message.meta
            zone = str(meta.get("timezone") or (facts.timezone if facts else None) or self.timezone)
            departement = meta.get("departement") or (facts.departement if facts else None)
            slot = next_call_slot(now, zone, history.get(phone, []), subdiv=holiday_subdivision(departement))
            if slot is None:
                out[position] = SendResult(
                    message.message_id, Outcome.PERMANENT, "aucun créneau d'appel autorisé"
                )
                continue
            if on_handoff is not None and not on_handoff(message.message_id):
                out[position] = SendResult(
                    message.message_id, Outcome.ABANDONED, "bail perdu : un autre processus l'envoie"
                )
                continue
            queued_phones.add(phone)
            business_id = _business_id(meta)
            rows.append(
                (
                    position,
                    message,
                    slot,
                    {
                        "message_id": message.message_id,
                        "business_id": business_id,
                        "assignee": _assignee(meta),
                        "phone": phone,
                        "script": message.body,
                        "due_at": _utc(slot),
                        "status": "open",
                        "attempts": 0,
                        "outcome_note": None,
                        "history": [],
                        "created_at": now,
                        "updated_at": now,
                    },
                )
            )

        if rows:
            with self.engine.begin() as conn:
                stmt = insert_for(conn, TASKS).on_conflict_do_nothing(index_elements=["message_id"])
                conn.execute(stmt, [values for _, _, _, values in rows])
                ids = dict(
                    conn.execute(
                        select(TASKS.c.message_id, TASKS.c.id).where(
                            TASKS.c.message_id.in_([m.message_id for _, m, _, _ in rows])
                        )
                    ).all()
                )
            for position, message, slot, values in rows:
                out[position] = SendResult(
                    message.message_id,
                    Outcome.SENT,
                    f"appel à passer à partir du {slot:%d/%m/%Y à %H:%M} ({values['assignee']})",
                    str(ids.get(message.message_id, "")),
                )
        return out

    def close(self) -> None:
        """Nothing to release: the engine belongs to the composition root."""


def due_tasks(
    conn: Connection, *, now: dt.datetime, assignee: str | None = None, limit: int = 50
) -> list[Any]:
    """Open tasks whose time has come, oldest first (for one assignee, or all)."""
    query = (
        select(TASKS)
        .where(TASKS.c.status == "open", TASKS.c.due_at <= _utc(now))
        .order_by(TASKS.c.due_at, TASKS.c.id)
        .limit(limit)
    )
    if assignee is not None:
        query = query.where(TASKS.c.assignee == assignee)
    return list(conn.execute(query).all())


def record_attempt(
    conn: Connection,
    task_id: int,
    *,
    outcome: str,
    at: dt.datetime,
    note: str | None = None,
    timezone: str = "Europe/Paris",
    departement: str | None = None,
) -> str:
    """Record one call attempt and return the task's new status (open, done, refused or no_answer).

    done and refused close the task; no_answer reschedules it at the next allowed slot, or closes it as
    no_answer once 4 attempts are spent or no slot is left.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown call outcome {outcome!r} (expected one of {', '.join(OUTCOMES)})")
    row = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).one()
    at = _utc(at)
    task_history = [*(row.history or []), {"at": at.isoformat(), "outcome": outcome}]
    values: dict[str, Any] = {
        "history": task_history,
        "attempts": row.attempts + 1,
        "updated_at": at,
        "outcome_note": note if note is not None else row.outcome_note,
    }
    if outcome == ANSWERED:
        values["status"] = "done"
    elif outcome == REFUSED:
        values["status"] = "refused"
    else:
        if departement is None and row.business_id is not None:
            # The business's own département gives its holidays (Alsace-Moselle, overseas).
            facts = _business_facts(conn, {row.business_id}).get(row.business_id)
            departement = facts.departement if facts else None
        others = history_for(conn, [row.phone]).get(row.phone, [])
        # This task's own attempts are already in `others` except the one being recorded now.
        slot = next_call_slot(
            at, timezone, [*others, CallAttempt(at, outcome)], subdiv=holiday_subdivision(departement)
        )
        if row.attempts + 1 >= MAX_ATTEMPTS or slot is None:
            values["status"] = "no_answer"
        else:
            values["status"] = "open"
            values["due_at"] = _utc(slot)
    conn.execute(update(TASKS).where(TASKS.c.id == task_id).values(**values))
    return values["status"]


register("call", CallTaskChannel.from_settings)
