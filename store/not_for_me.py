"""What a "Ce n'est pas pour moi" answer does (issue 16): the reason is kept, and its campaign's action applied.

The reasons and actions are `orchestrator.core.campaign_spec.NOT_FOR_ME_REASONS` / `NOT_FOR_ME_ACTIONS`; a campaign maps
one to the other in its `not_for_me` section (defaults otherwise). Everything is written in the caller's
transaction; what happens later (the gentle message after a pause, the testimony, the later steps that stop) is the
planner's (`orchestrator.core.planner.plan_answer_messages`, `plan_followups`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from orchestrator.core.campaign_spec import PAUSE_MONTHS, CampaignSpec, not_for_me_action
from orchestrator.core.planner import JOURNEY_ENDING_ANSWERS, TESTIMONY_DELAY
from store.conversions import ADOPTION_KIND, record_interaction
from store.models import Business, CallTask, Campaign, Enrollment, Interaction, Message, MessageEvent, TriggerEvent
from store.sql import insert_for
from triggers.model import ADOPTION_CATEGORIES

BUSINESS = Business.__table__
CAMPAIGNS = Campaign.__table__
ENROLLMENTS = Enrollment.__table__
MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__
TASKS = CallTask.__table__
EVENTS = TriggerEvent.__table__
TAKEOVER_STAGE = "transfer"  # `triggers.lifecycle.STAGES`: the business is being handed over


@dataclass(frozen=True, slots=True)
class Answered:
    """What an answer did: its action, and the date a pause ends (None otherwise)."""
    action: str
    paused_until: dt.datetime | None = None
    task_id: int | None = None


def campaign_spec(conn: Connection, campaign_id: int | None) -> CampaignSpec | None:
    """The campaign's validated spec, or None (no campaign, or a spec that no longer validates)."""
    if campaign_id is None:
        return None
    raw = conn.execute(select(CAMPAIGNS.c.spec).where(CAMPAIGNS.c.id == campaign_id)).scalar()
    try:
        return CampaignSpec.model_validate(raw) if raw else None
    except ValueError:
        return None


def answer_not_for_me(conn: Connection, msg, reason: str, *, detail: str = "", months: int | None = None,
                      now: dt.datetime, zone: ZoneInfo) -> Answered:
    """Record the answer to `msg` at `now` and apply what its campaign says the reason does; `zone` (the
    deployment's) counts a pause's months and the takeover event's day."""
    action = not_for_me_action(campaign_spec(conn, msg.campaign_id), reason)
    data: dict = {"reason": reason, "detail": detail.strip()[:1000]}
    if action == "pause":
        months = months if months in PAUSE_MONTHS else 6
        data["months"] = months
    record_interaction(conn, msg, "not_for_me", data, at=now)
    if msg.enrollment_id is not None:
        conn.execute(update(ENROLLMENTS).where(ENROLLMENTS.c.id == msg.enrollment_id)
                     .values(not_for_me=reason, not_for_me_action=action))
        if action in JOURNEY_ENDING_ANSWERS:
            stop_journey(conn, msg.enrollment_id, now)
    if msg.business_id is None:
        return Answered(action)
    if action == "pause":
        until = pause_end(now, months, zone)
        conn.execute(update(BUSINESS).where(BUSINESS.c.id == msg.business_id)
                     .values(paused_until=until, updated_at=now))
        _answer_due(conn, msg, until)
        return Answered(action, paused_until=until)
    if action == "free_offers":
        conn.execute(update(BUSINESS).where(BUSINESS.c.id == msg.business_id)
                     .values(free_offers_only=True, updated_at=now))
    elif action == "testimony":
        _answer_due(conn, msg, now + TESTIMONY_DELAY)
    elif action == "ambassador_call":
        return Answered(action, task_id=ambassador_call(conn, msg, now))
    elif action == "takeover":
        start_takeover(conn, msg, now, zone)
    return Answered(action)


def pause_end(now: dt.datetime, months: int, zone: ZoneInfo) -> dt.datetime:
    """The same day `months` later in `zone`, at the same hour (the end of a month when shorter), in UTC."""
    local = now.astimezone(zone)
    return (local + relativedelta(months=months)).astimezone(dt.UTC)


def _answer_due(conn: Connection, msg, at: dt.datetime) -> None:
    if msg.enrollment_id is not None:
        conn.execute(update(ENROLLMENTS).where(ENROLLMENTS.c.id == msg.enrollment_id).values(answer_due_at=at))


def stop_journey(conn: Connection, enrollment_id: int, now: dt.datetime) -> int:
    """Cancel the journey's messages still planned (the later steps are stopped by the planner as they fall due)."""
    ids = [r[0] for r in conn.execute(select(MESSAGES.c.id).where(
        MESSAGES.c.enrollment_id == enrollment_id, MESSAGES.c.status == "planned"))]
    if ids:
        conn.execute(update(MESSAGES).where(MESSAGES.c.id.in_(ids), MESSAGES.c.status == "planned")
                     .values(status="cancelled", last_error="not_for_me"))
        conn.execute(HISTORY.insert(), [{"message_id": i, "status": "cancelled", "at": now, "detail": "not_for_me"}
                                        for i in ids])
    return len(ids)


def ambassador_call(conn: Connection, msg, now: dt.datetime) -> int:
    """ "Je ne sais pas par où commencer": a call task for the message's ambassador (else the advisers' queue),
    due now; the task of a callback already asked from this message stays as it is."""
    found = conn.execute(select(TASKS.c.id).where(TASKS.c.message_id == msg.id)).scalar()
    if found is not None:
        return found
    ctx = msg.context or {}
    amb_id = (ctx.get("meta") or {}).get("ambassador_id")
    business = conn.execute(select(BUSINESS.c.name, BUSINESS.c.phone, BUSINESS.c.email)
                            .where(BUSINESS.c.id == msg.business_id)).first()
    name = (business.name if business else None) or "Cette entreprise"
    reach = "" if business and business.phone else (
        f" Pas de numéro connu : écrivez-lui à {business.email}." if business and business.email else
        " Pas de numéro connu.")
    script = (f"{name} ne sait pas par où commencer avec le numérique. Appelez pour proposer un premier pas "
              f"simple : un rendez-vous, un diagnostic, une formation courte.{reach}")
    return conn.execute(TASKS.insert().values(
        message_id=msg.id, business_id=msg.business_id,
        assignee=f"ambassador:{amb_id}" if amb_id not in (None, "") else "adviser",
        phone=(business.phone if business else None) or "", script=script, due_at=now, status="open",
        attempts=0, history=[], created_at=now, updated_at=now)).inserted_primary_key[0]


def start_takeover(conn: Connection, msg, now: dt.datetime, zone: ZoneInfo) -> None:
    """ "Je vais transmettre ou arrêter": the business enters the handover stage, and a `takeover` event from the
    landing page lets the planner enrol it in a takeover campaign when one runs on its territory."""
    row = conn.execute(select(BUSINESS.c.siret, BUSINESS.c.siren).where(BUSINESS.c.id == msg.business_id)).first()
    if row is None:
        return
    conn.execute(update(BUSINESS).where(BUSINESS.c.id == msg.business_id)
                 .values(lifecycle_stage=TAKEOVER_STAGE, updated_at=now))
    stmt = insert_for(conn, EVENTS).on_conflict_do_nothing(index_elements=["source", "external_id"])
    conn.execute(stmt, {"source": "landing", "external_id": f"not_for_me:{msg.id}", "type": "takeover",
                        "siret": row.siret, "siren": row.siren, "business_id": msg.business_id,
                        "occurred_on": now.astimezone(zone).date(), "received_at": now, "status": "accepted",
                        "planned": False, "payload": {"reason": "transmettre"}})


def record_tool_answer(conn: Connection, msg, category: str, now: dt.datetime) -> bool:
    """ "Déjà équipé": the owner's answer to "quel outil utilisez-vous ?" as one `tool_adopted` of that category
    (`triggers.model.ADOPTION_CATEGORIES`), once per message and category."""
    if category not in ADOPTION_CATEGORIES:
        raise ValueError(f"catégorie d'adoption inconnue : {category}")
    table = Interaction.__table__
    for (data,) in conn.execute(select(table.c.data).where(table.c.message_id == msg.id,
                                                           table.c.kind == ADOPTION_KIND)):
        if (data or {}).get("category") == category:
            return False
    record_interaction(conn, msg, ADOPTION_KIND, {"source": "landing", "category": category}, at=now)
    return True
