"""Follow-up that lasts (issue 16, point 3): after a callback, an enrolment or an ambassador meeting, the ambassador
or adviser who took it follows the business up at 30 and 90 days, with a one-line outcome from a fixed list. A
follow-up still open 7 days after its date is missed: the operator sees it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, func, select, true, update
from sqlalchemy.engine import Connection

from store.models import Business, CallTask, Enrollment, FollowupTask, Interaction
from store.sql import insert_for
from triggers.model import ADOPTION_CATEGORIES

FOLLOWUPS = FollowupTask.__table__
INTERACTIONS = Interaction.__table__
TASKS = CallTask.__table__
ENROLLMENTS = Enrollment.__table__
BUSINESS = Business.__table__

AFTER_DAYS = (30, 90)
MISSED_AFTER = dt.timedelta(days=7)
STARTING_KINDS = {"callback_request": "rappel demandé", "offer_enrolled": "inscription à une offre",
                  "ambassador_met": "rencontre avec l'ambassadeur"}
OUTCOMES = {"started": "A commencé à utiliser un outil", "in_progress": "En cours", "abandoned": "Abandonné"}


def _assignee(conn: Connection, kind: str, data: dict, enrollment_id: int | None) -> str:
    """Who took it: the call task's assignee (callback, meeting), else the enrollment's ambassador, else advisers."""
    task_id = (data or {}).get("task_id")
    if task_id:
        found = conn.execute(select(TASKS.c.assignee).where(TASKS.c.id == task_id)).scalar()
        if found:
            return found
    if enrollment_id is not None:
        amb = conn.execute(select(ENROLLMENTS.c.ambassador_id).where(ENROLLMENTS.c.id == enrollment_id)).scalar()
        if amb is not None:
            return f"ambassador:{amb}"
    return "adviser"


def schedule_followups(conn: Connection, now: dt.datetime, zone: ZoneInfo) -> int:
    """Create the 30- and 90-day follow-ups of every callback, enrolment and meeting that has none yet, dated in
    `zone` (the deployment's); returns how many were created (idempotent: one per interaction and delay)."""
    done = select(FOLLOWUPS.c.interaction_id)
    rows = conn.execute(select(INTERACTIONS).where(INTERACTIONS.c.kind.in_(tuple(STARTING_KINDS)),
                                                   INTERACTIONS.c.business_id.is_not(None),
                                                   INTERACTIONS.c.id.not_in(done))
                        .order_by(INTERACTIONS.c.id).limit(5000)).all()
    before = conn.execute(select(func.count()).select_from(FOLLOWUPS)).scalar_one()
    for r in rows:
        at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)
        assignee = _assignee(conn, r.kind, r.data, r.enrollment_id)
        stmt = insert_for(conn, FOLLOWUPS).on_conflict_do_nothing(index_elements=["interaction_id", "after_days"])
        for days in AFTER_DAYS:
            conn.execute(stmt, {
                "interaction_id": r.id, "business_id": r.business_id, "campaign_id": r.campaign_id, "kind": r.kind,
                "assignee": assignee, "after_days": days,
                "due_on": (at.astimezone(zone) + dt.timedelta(days=days)).date(), "status": "open",
                "created_at": now})
    return conn.execute(select(func.count()).select_from(FOLLOWUPS)).scalar_one() - before


def followup_clause(scope_role: str, assignee: str | None, campaign_ids: list[int] | None):
    """Which follow-ups a dashboard user sees: the operator all, an ambassador its own, a collectivité those of
    its campaigns."""
    if scope_role == "operator":
        return true()
    if scope_role == "ambassador":
        return FOLLOWUPS.c.assignee == assignee if assignee else false()
    return FOLLOWUPS.c.campaign_id.in_(campaign_ids or [-1])


def missed_count(conn: Connection, clause, *, today: dt.date) -> int:
    """How many follow-ups the clause allows are missed (still open 7 days after their date)."""
    return int(conn.execute(select(func.count()).select_from(FOLLOWUPS).where(
        clause, FOLLOWUPS.c.status == "open", FOLLOWUPS.c.due_on < today - MISSED_AFTER)).scalar() or 0)


def followups(conn: Connection, clause, *, today: dt.date, open_only: bool = True, missed_only: bool = False,
              limit: int = 500) -> list[dict]:
    """Follow-ups the clause allows, the earliest first, with their business and whether they are missed."""
    query = (select(FOLLOWUPS, BUSINESS.c.name.label("business"), BUSINESS.c.city.label("commune"))
             .select_from(FOLLOWUPS.join(BUSINESS, BUSINESS.c.id == FOLLOWUPS.c.business_id)).where(clause))
    if open_only or missed_only:
        query = query.where(FOLLOWUPS.c.status == "open")
    if missed_only:
        query = query.where(FOLLOWUPS.c.due_on < today - MISSED_AFTER)
    rows = conn.execute(query.order_by(FOLLOWUPS.c.due_on, FOLLOWUPS.c.id).limit(limit)).all()
    return [{"id": r.id, "business": r.business, "commune": r.commune, "kind": STARTING_KINDS.get(r.kind, r.kind),
             "after_days": r.after_days, "due_on": r.due_on, "status": r.status, "assignee": r.assignee,
             "outcome": OUTCOMES.get(r.outcome or "", ""), "category": r.category, "note": r.note,
             "open": r.status == "open", "missed": r.status == "open" and r.due_on < today - MISSED_AFTER}
            for r in rows]


def complete_followup(conn: Connection, followup_id: int, clause, *, outcome: str, category: str | None,
                      note: str, by: str, now: dt.datetime) -> bool:
    """Record a follow-up's outcome (and, for "a commencé à utiliser", the tool's adoption category as a
    `tool_adopted` of the business); False when the scope does not see it or it is done already."""
    if outcome not in OUTCOMES:
        raise ValueError("Résultat du suivi inconnu.")
    if outcome == "started" and category not in ADOPTION_CATEGORIES:
        raise ValueError("Dites quel outil elle a commencé à utiliser.")
    row = conn.execute(select(FOLLOWUPS).where(FOLLOWUPS.c.id == followup_id, FOLLOWUPS.c.status == "open",
                                               clause)).first()
    if row is None:
        return False
    conn.execute(update(FOLLOWUPS).where(and_(FOLLOWUPS.c.id == followup_id, FOLLOWUPS.c.status == "open"))
                 .values(status="done", outcome=outcome, category=category if outcome == "started" else None,
                         note=note.strip()[:300] or None, done_at=now, done_by=by[:120]))
    if outcome == "started":
        source = conn.execute(select(INTERACTIONS).where(INTERACTIONS.c.id == row.interaction_id)).first()
        conn.execute(INTERACTIONS.insert().values(
            business_id=row.business_id, message_id=source.message_id if source else None,
            campaign_id=row.campaign_id, enrollment_id=source.enrollment_id if source else None, kind="tool_adopted",
            at=now, data={"source": "followup", "followup_id": followup_id, "category": category}))
    return True
