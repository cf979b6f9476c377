"""Call tasks: a queue of calls for advisers and ambassadors, each with its script, at allowed times only.

"Sending" a call message decides one task (a row of the `calltask` table, idempotent on the outbox message id)
whose `due_at` is the next moment the law allows a call (`integrations.call_rules`): the channel answers SENT
with the task's columns in `SendResult.record`, and the dispatcher queues it in the transaction that records
the outcome (`orchestrator.app.calls.queue_tasks`). An adviser's screen lists the due tasks
(`store.call_tasks.due_tasks`) and records each attempt (`orchestrator.app.calls.record_attempt`), which
reschedules or closes the task.

Who may be called: only a number with a consent or an existing relationship. The message meta says so
(`meta["consent"]` or `meta["relationship"]` true); without it, what the store knew of the business at send
time (`message.facts`, a `CallFacts` gathered by the dispatcher: `business.phone_consent`, the number being the
business's own, or a specific consent to that number); anything else is PERMANENT. Other meta read:
`ambassador_id` (the task goes to that ambassador, else to the shared "adviser" queue, or `meta["assignee"]`),
`departement` and `timezone` (else the business's département and its time zone from the facts: regional public
holidays, overseas clocks).

Settings (read by the composition root, passed as constructor arguments):

    DECLIC_TIMEZONE       local time of the calls when the message does not give one (`Settings.timezone`)

Exactly once: `on_handoff(message_id)` is called for every task before the dispatcher queues it; a task whose
lease was lost is not queued (ABANDONED), and the unique message id makes a repeat harmless.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from integrations._settings import no_clock, setting
from integrations.base import Answer, Handoff, OutgoingMessage, register
from integrations.call_rules import CallAttempt, holiday_subdivision, next_call_slot
from orchestrator.core.moments import as_utc
from orchestrator.core.outcomes import Outcome, SendResult
from orchestrator.core.phones import InvalidNumber, normalise_number

__all__ = ["CallAttempt", "CallFacts", "CallTaskChannel", "business_id_of", "next_call_slot"]

DEFAULT_ASSIGNEE = "adviser"


@dataclass(frozen=True, slots=True)
class CallFacts:
    """What the store knew at send time of a call message's business and number (gathered by the dispatcher)."""

    consent: bool = False  # the business agreed to be called on its own number
    phone: str = ""  # the business's own number, normalised ("" when it has none)
    departement: str | None = None
    timezone: str | None = None
    numbers: frozenset[str] = frozenset()  # numbers with a live specific call consent (store.privacy)
    history: tuple[CallAttempt, ...] = ()  # every call already made to the message's number, across all tasks
    open_task: int | None = None  # the open task of that number, if any: one open task per number
    queued_task: int | None = None  # the task already queued for this very message (a retried batch)


def business_id_of(meta: dict[str, Any]) -> int | None:
    """The business id a message's meta names, None when it names none (or not a number)."""
    value = meta.get("business_id")
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _has_consent(meta: dict[str, Any], phone: str, known: CallFacts) -> bool:
    if meta.get("consent") or meta.get("relationship"):
        return True
    # The consent recorded for the business covers its own number only; a specific one, the number agreed on.
    return (known.consent and known.phone == phone) or phone in known.numbers


def _assignee(meta: dict[str, Any]) -> str:
    if meta.get("assignee"):
        return str(meta["assignee"])[:80]
    if meta.get("ambassador_id") not in (None, ""):
        return f"ambassador:{meta['ambassador_id']}"
    return DEFAULT_ASSIGNEE


class CallTaskChannel:
    """Decides call tasks; SENT means "to be queued for a person to call at an allowed time" (`record`)."""

    name = "call"

    def __init__(
        self,
        *,
        timezone: str,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.timezone = timezone
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Any, clock: Callable[[], dt.datetime] | None = None) -> CallTaskChannel:
        """The channel on the composition root's clock and zone."""
        return cls(timezone=setting(settings, "timezone"), clock=clock or no_clock)

    def send(self, batch: Sequence[OutgoingMessage], on_handoff: Handoff | None = None,
             on_answer: Answer | None = None) -> list[SendResult]:
        """One task per message; refused ones (no consent, bad number, no script, no slot) are PERMANENT."""
        now = as_utc(self.clock())
        results: list[SendResult] = []
        queued_phones: set[str] = set()
        for message in batch:
            result = self._decide(message, now, queued_phones, on_handoff)
            if result.record is not None:
                queued_phones.add(result.record["phone"])
            results.append(result)
        return results

    def _decide(self, message: OutgoingMessage, now: dt.datetime, queued_phones: set[str],
                on_handoff: Handoff | None) -> SendResult:
        facts = message.facts if isinstance(message.facts, CallFacts) else CallFacts()
        try:
            phone = normalise_number(message.recipient)
        except InvalidNumber as exc:
            return SendResult(message.message_id, Outcome.PERMANENT, exc.reason)
        if not _has_consent(message.meta, phone, facts):
            return SendResult(message.message_id, Outcome.PERMANENT,
                              "appel interdit : ni consentement ni relation existante pour ce numéro")
        if not message.body.strip():
            return SendResult(message.message_id, Outcome.PERMANENT, "script d'appel vide")
        if facts.queued_task is not None:  # a retry of a batch that was queued: nothing more to do
            return SendResult(message.message_id, Outcome.SENT, "tâche déjà dans la file", str(facts.queued_task))
        if facts.open_task is not None or phone in queued_phones:
            # One open task per number: two would mean two calls in the same slot.
            task = facts.open_task
            detail = f"un appel est déjà prévu pour ce numéro (tâche {task})" if task else "appel déjà prévu"
            return SendResult(message.message_id, Outcome.SENT, detail, str(task or ""))
        meta = message.meta
        zone = str(meta.get("timezone") or facts.timezone or self.timezone)
        departement = meta.get("departement") or facts.departement
        slot = next_call_slot(now, zone, list(facts.history), subdiv=holiday_subdivision(departement))
        if slot is None:
            return SendResult(message.message_id, Outcome.PERMANENT, "aucun créneau d'appel autorisé")
        if on_handoff is not None and not on_handoff(message.message_id):
            return SendResult(message.message_id, Outcome.ABANDONED, "bail perdu : un autre processus l'envoie")
        assignee = _assignee(meta)
        task = {"message_id": message.message_id, "business_id": business_id_of(meta), "assignee": assignee,
                "phone": phone, "script": message.body, "due_at": as_utc(slot), "status": "open", "attempts": 0,
                "outcome_note": None, "history": [], "created_at": now, "updated_at": now}
        return SendResult(message.message_id, Outcome.SENT,
                          f"appel à passer à partir du {slot:%d/%m/%Y à %H:%M} ({assignee})", record=task)

    def close(self) -> None:
        """Nothing to release."""


register("call", CallTaskChannel.from_settings)
