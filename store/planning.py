"""The planning shell's store side: gather the planner's inputs in bulk, apply its plan in one transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import and_, select, tuple_, update
from sqlalchemy.engine import Connection

from orchestrator.campaign_spec import CampaignSpec
from orchestrator.planner import BusinessView, CampaignRule, Candidate, Plan
from segments.taxonomy import families, naf_entry
from segments.territory import commune
from store.models import Business, Campaign, Enrollment, Message, MessageEvent, TriggerEvent, utcnow
from store.sql import chunks, insert_for
from store.suppressions import suppressed_among

EVENTS = TriggerEvent.__table__
BUSINESS = Business.__table__
CAMPAIGNS = Campaign.__table__
ENROLLMENTS = Enrollment.__table__
MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__


def business_view(row) -> BusinessView:
    """The planner's view of a business row (reference lookups are in-memory)."""
    naf = naf_entry(row.naf_code) if row.naf_code else None
    fam = families().get(row.metier_family or "")
    place = commune(row.commune_code) if row.commune_code else None
    postal = None
    if row.street and row.postal_code and row.city:
        postal = "\n".join(x for x in (row.name, row.street, f"{row.postal_code} {row.city.upper()}") if x)
    return BusinessView(
        id=row.id, siret=row.siret, name=row.name,
        metier=naf.metier if naf else (fam.label.lower() if fam else "entreprise"),
        family=row.metier_family, family_label=fam.label if fam else "Autres activités",
        commune_code=row.commune_code, commune_nom=place.nom if place else row.city,
        epci_code=row.epci_code, departement_code=row.departement_code, region_code=row.region_code,
        postal_code=row.postal_code, state=row.state, do_not_contact=row.do_not_contact,
        email=row.email, phone=row.phone, postal=postal,
    )


def pending_candidates(conn: Connection, limit: int) -> tuple[list[int], list[Candidate]]:
    """The oldest unplanned events (all of them, for marking) and those about a known business."""
    rows = conn.execute(
        select(EVENTS.c.id.label("event_id"), EVENTS.c.type.label("event_type"),
               EVENTS.c.occurred_on.label("event_occurred_on"), BUSINESS)
        .select_from(EVENTS.outerjoin(BUSINESS, BUSINESS.c.id == EVENTS.c.business_id))
        .where(EVENTS.c.planned.is_(False), EVENTS.c.status == "accepted")
        .order_by(EVENTS.c.id)
        .limit(limit)
    ).all()
    event_ids = [r.event_id for r in rows]
    candidates = [Candidate(r.event_id, r.event_type, r.event_occurred_on, business_view(r))
                  for r in rows if r.siret is not None]
    return event_ids, candidates


def active_campaigns(conn: Connection) -> list[CampaignRule]:
    """Campaigns that may enrol now."""
    rows = conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.version, CAMPAIGNS.c.spec)
                        .where(CAMPAIGNS.c.status == "active"))
    return [CampaignRule(i, v, CampaignSpec.model_validate(s)) for i, v, s in rows]


def existing_enrollments(conn: Connection, candidates: list[Candidate]) -> set[tuple[int, int, str]]:
    """(campaign, business, trigger key) already stored for these businesses."""
    business_ids = sorted({c.business.id for c in candidates})
    out: set[tuple[int, int, str]] = set()
    for part in chunks(business_ids, 900):
        rows = conn.execute(select(ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.business_id, ENROLLMENTS.c.trigger_key)
                            .where(ENROLLMENTS.c.business_id.in_(part)))
        out.update((a, b, c) for a, b, c in rows)
    return out


def suppressed_for(conn: Connection, candidates: list[Candidate]) -> set[tuple[str, str]]:
    """Opt-outs among the candidates' addresses."""
    emails = [c.business.email for c in candidates if c.business.email]
    phones = [c.business.phone for c in candidates if c.business.phone]
    out = {("email", a) for a in suppressed_among(conn, "email", emails)}
    out |= {("phone", a) for a in suppressed_among(conn, "phone", phones)}
    return out


def apply_plan(conn: Connection, plan: Plan, event_ids: list[int]) -> dict[str, int]:
    """Store enrollments and their messages, and mark the events planned; idempotent on rerun."""
    now = utcnow()
    planned_messages = 0
    for part in chunks(plan.enrollments, 500):
        rows = [{"campaign_id": e.campaign_id, "business_id": e.business_id, "trigger_event_id": e.event_id,
                 "trigger_key": e.trigger_key, "trigger_type": e.trigger_type, "arm": e.arm, "variant": None,
                 "campaign_version": e.campaign_version, "enrolled_at": now} for e in part]
        stmt = insert_for(conn, ENROLLMENTS).on_conflict_do_nothing(
            index_elements=["campaign_id", "business_id", "trigger_key"])
        result = conn.execute(stmt.returning(ENROLLMENTS.c.id, ENROLLMENTS.c.campaign_id,
                                             ENROLLMENTS.c.business_id, ENROLLMENTS.c.trigger_key), rows)
        new_ids = {(c, b, k): i for i, c, b, k in result}
        messages = []
        for e in part:
            enrollment_id = new_ids.get((e.campaign_id, e.business_id, e.trigger_key))
            if enrollment_id is None:
                continue  # enrolled by a concurrent or earlier run
            for m in e.messages:
                messages.append({
                    "campaign_id": e.campaign_id, "enrollment_id": enrollment_id, "business_id": e.business_id,
                    "step": m.step, "channel": m.channel, "template": m.template, "variant": None,
                    "recipient": m.recipient, "due_at": m.due_at.astimezone(dt.UTC),
                    "status": "planned", "attempts": 0, "context": m.context, "created_at": now,
                })
        if messages:
            stmt = insert_for(conn, MESSAGES).on_conflict_do_nothing(index_elements=["enrollment_id", "step"])
            ids = [r[0] for r in conn.execute(stmt.returning(MESSAGES.c.id), messages)]
            conn.execute(HISTORY.insert(), [{"message_id": i, "status": "planned", "at": now} for i in ids])
            planned_messages += len(ids)
    for part in chunks(event_ids, 900):
        conn.execute(update(EVENTS).where(EVENTS.c.id.in_(part)).values(planned=True))
    return {"events": len(event_ids), "enrolled": len(plan.enrollments), "messages": planned_messages,
            "skipped": len(plan.skipped)}
