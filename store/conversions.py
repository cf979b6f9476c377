"""What owners and partners tell us back: landing-page answers, callback requests, conversions.

Every write here is a row before any side effect (the ambassador's e-mail goes after the commit).
Conversions are attributed to the business's latest enrollment made before the event, treatment or
holdout alike: the control group's conversions are what the uplift is measured against.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from store.models import Business, CallTask, Enrollment, Interaction, Message, TriggerEvent
from store.privacy import CALLBACK_CONSENT_TEXT, SMS_CONSENT_TEXT, give_consent, owner_of_campaign
from store.sql import insert_for
from triggers.model import ADOPTION_CATEGORIES

MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__
TASKS = CallTask.__table__
BUSINESS = Business.__table__
ENROLLMENTS = Enrollment.__table__
EVENTS = TriggerEvent.__table__

CONVERSION_KINDS = ("offer_enrolled", "diagnostic_completed", "ambassador_met")
# Real use of a tool (with its category in `data`): attributed like a conversion, measured apart.
ADOPTION_KIND = "tool_adopted"
# An owner answering in any way: a callback request, a "not for me", the diagnostic, a reply to an SMS.
RESPONSE_KINDS = ("callback_request", "not_for_me", "diagnostic_completed", "sms_reply")


def message_row(conn: Connection, message_id: int):
    """The outbox row of a message, or None."""
    return conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()


def record_interaction(
    conn: Connection, msg, kind: str, data: dict[str, Any] | None = None, *, at: dt.datetime
) -> int:
    """One interaction of the business that received `msg`, attributed to its enrollment and campaign."""
    result = conn.execute(
        INTERACTIONS.insert().values(
            business_id=msg.business_id,
            message_id=msg.id,
            campaign_id=msg.campaign_id,
            enrollment_id=msg.enrollment_id,
            kind=kind,
            at=at,
            data=data or {},
        )
    )
    return result.inserted_primary_key[0]


@dataclass(frozen=True, slots=True)
class CallbackStored:
    """The call task behind a callback request, and whether it was new."""
    task_id: int
    created: bool
    assignee: str


def request_callback(
    conn: Connection,
    msg,
    *,
    phone: str,
    slot: str,
    due_at: dt.datetime,
    note: str,
    assignee: str,
    script: str,
    now: dt.datetime,
    sms: bool = False,
) -> CallbackStored:
    """Create (or update, when asked again) the call task of this message and record the request.

    The owner gave the number to be called back: it becomes the business's number when none is known, and
    a consent specific to the campaign's owner is recorded (date, source, the words agreed to): later call
    campaigns of that owner may use it, other owners may not. With `sms` (the person ticked the SMS box), an
    SMS consent to that owner and number is recorded as well, apart (its own purpose and text).
    """
    existing = conn.execute(select(TASKS.c.id).where(TASKS.c.message_id == msg.id)).first()
    values = {
        "business_id": msg.business_id,
        "assignee": assignee,
        "phone": phone,
        "script": script,
        "due_at": due_at,
        "status": "open",
        "outcome_note": note or None,
        "updated_at": now,
    }
    if existing:
        conn.execute(update(TASKS).where(TASKS.c.id == existing.id).values(**values))
        task_id, created = existing.id, False
    else:
        task_id = conn.execute(
            TASKS.insert().values(message_id=msg.id, attempts=0, history=[], created_at=now, **values)
        ).inserted_primary_key[0]
        created = True
    conn.execute(
        update(BUSINESS)
        .where(BUSINESS.c.id == msg.business_id, BUSINESS.c.phone.is_(None))
        .values(phone=phone, phone_source="landing", updated_at=now)
    )
    owner = owner_of_campaign(conn, msg.campaign_id)
    if owner and msg.business_id is not None:
        give_consent(conn, business_id=msg.business_id, owner=owner, purpose="call", phone=phone,
                     source=f"landing:{msg.id}", text=CALLBACK_CONSENT_TEXT.format(owner=owner), at=now)
        if sms:
            give_consent(conn, business_id=msg.business_id, owner=owner, purpose="sms", phone=phone,
                         source=f"landing:{msg.id}", text=SMS_CONSENT_TEXT.format(owner=owner), at=now)
    record_interaction(
        conn,
        msg,
        "callback_request",
        {"slot": slot, "task_id": task_id, "note": note[:500] if note else ""},
        at=now,
    )
    return CallbackStored(task_id, created, assignee)


def callback_asked_since(conn: Connection, business_id: int, since: dt.datetime) -> bool:
    """Whether this business asked for a callback since `since`, from any of its messages.

    The business row is locked first (a no-op update: a row lock on PostgreSQL, the write lock on SQLite), so two
    forms posted at once cannot both pass the check.
    """
    conn.execute(update(BUSINESS).where(BUSINESS.c.id == business_id).values(id=BUSINESS.c.id))
    found = conn.execute(
        select(INTERACTIONS.c.id)
        .where(INTERACTIONS.c.business_id == business_id, INTERACTIONS.c.kind == "callback_request",
               INTERACTIONS.c.at >= since)
        .limit(1)
    ).first()
    return found is not None


def record_diagnostic(
    conn: Connection,
    msg,
    *,
    score: int,
    data: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Store the business's digital maturity (0-5) and count a `diagnostic_completed` conversion whose data are the
    versioned answers and levels (`orchestrator.core.diagnostic`)."""
    conn.execute(
        update(BUSINESS)
        .where(BUSINESS.c.id == msg.business_id)
        .values(digital_maturity=score, updated_at=now)
    )
    record_interaction(conn, msg, "diagnostic_completed", dict(data, score=score), at=now)


def attribute_conversions(conn: Connection, event_ids: list[int] | None = None) -> int:
    """Turn partner conversion events into interactions of the business's latest prior enrollment.

    Idempotent (one interaction per event, unique on trigger_event_id). `event_ids` None means every
    conversion event not attributed yet (the catch-up for events whose business arrived later).
    Returns the number of interactions written.
    """
    attributed = select(INTERACTIONS.c.trigger_event_id).where(INTERACTIONS.c.trigger_event_id.is_not(None))
    query = select(
        EVENTS.c.id, EVENTS.c.type, EVENTS.c.business_id, EVENTS.c.occurred_on, EVENTS.c.source, EVENTS.c.payload
    ).where(
        EVENTS.c.type.in_((*CONVERSION_KINDS, ADOPTION_KIND)), EVENTS.c.business_id.is_not(None),
        EVENTS.c.id.not_in(attributed),
    )
    if event_ids is not None:
        if not event_ids:
            return 0
        query = query.where(EVENTS.c.id.in_(event_ids))
    events = conn.execute(query).all()
    if not events:
        return 0
    written = 0
    for ev in events:
        # The latest enrollment made before the partner saw the conversion: treatment or holdout.
        seen = dt.datetime.combine(ev.occurred_on, dt.time.max, dt.UTC)
        enrolled = conn.execute(
            select(ENROLLMENTS.c.id, ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.enrolled_at)
            .where(ENROLLMENTS.c.business_id == ev.business_id, ENROLLMENTS.c.enrolled_at <= seen)
            .order_by(ENROLLMENTS.c.enrolled_at.desc(), ENROLLMENTS.c.id.desc())
            .limit(1)
        ).first()
        at = dt.datetime.combine(ev.occurred_on, dt.time(12), dt.UTC)
        if enrolled is not None:
            at = max(at, _aware(enrolled.enrolled_at))  # the same day: never before the enrollment
        stmt = insert_for(conn, INTERACTIONS).on_conflict_do_nothing(index_elements=["trigger_event_id"])
        result = conn.execute(
            stmt,
            {
                "business_id": ev.business_id,
                "message_id": None,
                "campaign_id": enrolled.campaign_id if enrolled else None,
                "enrollment_id": enrolled.id if enrolled else None,
                "kind": ev.type,
                "at": at,
                "data": {"source": ev.source, "category": (ev.payload or {}).get("category")}
                if ev.type == ADOPTION_KIND else {"source": ev.source},
                "trigger_event_id": ev.id,
            },
        )
        written += result.rowcount or 0
    return written


def record_task_outcome(conn: Connection, task_id: int, *, met: bool, now: dt.datetime | None = None) -> bool:
    """After an ambassador's call: a meeting agreed counts as `ambassador_met` for the task's message."""
    if not met:
        return False
    task = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
    if task is None:
        return False
    msg = message_row(conn, task.message_id)
    if msg is None:
        return False
    already = conn.execute(
        select(func.count())
        .select_from(INTERACTIONS)
        .where(and_(INTERACTIONS.c.message_id == msg.id, INTERACTIONS.c.kind == "ambassador_met"))
    ).scalar_one()
    if already:
        return False
    record_interaction(conn, msg, "ambassador_met", {"source": "call_task", "task_id": task_id}, at=now)
    return True


def record_task_adoption(
    conn: Connection, task_id: int, category: str, *, now: dt.datetime | None = None
) -> bool:
    """After an ambassador's call: "a commencé à utiliser ..." counts as one `tool_adopted` of that category for
    the task's message (once per task and category). `category` is a code of ADOPTION_CATEGORIES."""
    if category not in ADOPTION_CATEGORIES:
        raise ValueError(f"catégorie d'adoption inconnue : {category}")
    task = conn.execute(select(TASKS).where(TASKS.c.id == task_id)).first()
    msg = message_row(conn, task.message_id) if task is not None else None
    if msg is None:
        return False
    for row in conn.execute(
        select(INTERACTIONS.c.data).where(INTERACTIONS.c.message_id == msg.id, INTERACTIONS.c.kind == ADOPTION_KIND)
    ):
        if (row.data or {}).get("category") == category:
            return False
    record_interaction(
        conn, msg, ADOPTION_KIND, {"source": "call_task", "task_id": task_id, "category": category}, at=now
    )
    return True


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
