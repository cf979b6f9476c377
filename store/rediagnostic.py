"""Adoption measured, not clicks (issue 16, point 4): the self-diagnostic offered again.

- 90 days after a business's first conversion in a campaign, one message (`templates/messages/*/rediagnostic`) asks
  the owner to answer the five questions again through the short link `/s/<code>/diagnostic`;
- once a campaign's measurement window is over (`measurement_window` days after an enrolment, 120 by default), a
  random share of its control group (`control_diagnostic` %, 30 by default) is offered the same diagnostic. It is
  the only message a control business ever gets, and only after the window: the effect measured before it is
  untouched.

Both are planned messages of their own steps, once per enrollment (`uq_message_enrollment_step`), through the usual
channels (e-mail, else SMS, else letter), never to a business closed, not to contact, paused or opted out. The
answers are `diagnostic_completed` interactions of those messages; `store.report.diagnostic_figures` compares them
between arms.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter

from sqlalchemy import and_, exists, func, select
from sqlalchemy.engine import Connection

from orchestrator.core.campaign_spec import Step
from orchestrator.core.planner import (
    Candidate,
    PlannedMessage,
    StepDecision,
    barred,
    choose_channel,
    is_paused,
    message_context,
)
from store.conversions import CONVERSION_KINDS
from store.models import Business, Enrollment, Interaction, Message
from store.planning import VIEW_COLUMNS, active_campaigns, apply_followups, suppressed_for, view_of

BUSINESS = Business.__table__
ENROLLMENTS = Enrollment.__table__
MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__

TEMPLATE = "rediagnostic"
AFTER_CONVERSION_STEP = 101  # outside any campaign's steps (answers use 100)
CONTROL_STEP = 102
STEPS = (AFTER_CONVERSION_STEP, CONTROL_STEP)
AFTER_CONVERSION = dt.timedelta(days=90)
CHANNELS = Step(channel="email", template=TEMPLATE, fallback=["sms", "letter"])


def drawn(campaign_id: int, enrollment_id: int, percent: float) -> bool:
    """Whether a control enrollment is in the sample offered the diagnostic: a stable draw (the same on every run
    and every machine), `percent` in 100 on average."""
    digest = hashlib.sha256(f"control-diagnostic:{campaign_id}:{enrollment_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < percent / 100


def _first_contexts(conn: Connection, enrollment_ids: list[int]) -> dict[int, dict]:
    rows = conn.execute(select(MESSAGES.c.enrollment_id, MESSAGES.c.context)
                        .where(MESSAGES.c.enrollment_id.in_(enrollment_ids or [-1]), MESSAGES.c.step == 0))
    return {r.enrollment_id: r.context or {} for r in rows}


def plan_rediagnostics(conn: Connection, now: dt.datetime, *, unavailable: frozenset[str] = frozenset(),
                       limit: int = 5000) -> Counter:
    """Plan the diagnostics due at `now`: after a conversion (90 days) and for the control sample (after the
    window); returns the counts (`rediagnostic_messages`, `control_diagnostic_messages`, `rediagnostic_stopped_*`)."""
    rules = {r.id: r for r in active_campaigns(conn, {})}
    if not rules:
        return Counter()
    own = MESSAGES.alias("own")
    not_asked = ~exists(select(own.c.id).where(own.c.campaign_id == ENROLLMENTS.c.campaign_id,
                                               own.c.business_id == ENROLLMENTS.c.business_id,
                                               own.c.step.in_(STEPS)))
    converted = (select(INTERACTIONS.c.enrollment_id, func.min(INTERACTIONS.c.at).label("at"))
                 .where(INTERACTIONS.c.kind.in_(CONVERSION_KINDS), INTERACTIONS.c.enrollment_id.is_not(None))
                 .group_by(INTERACTIONS.c.enrollment_id).subquery("conv"))
    due: list[tuple[int, int, int, str, int]] = []  # (enrollment, campaign, business, trigger type, step)
    for r in conn.execute(
        select(ENROLLMENTS.c.id, ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.business_id, ENROLLMENTS.c.trigger_type)
        .select_from(ENROLLMENTS.join(converted, converted.c.enrollment_id == ENROLLMENTS.c.id))
        .where(ENROLLMENTS.c.campaign_id.in_(list(rules)), ENROLLMENTS.c.arm == "treatment",
               converted.c.at <= now - AFTER_CONVERSION, not_asked)
        .order_by(ENROLLMENTS.c.id).limit(limit)
    ):
        due.append((r.id, r.campaign_id, r.business_id, r.trigger_type, AFTER_CONVERSION_STEP))
    for campaign_id, rule in rules.items():
        spec = rule.spec
        if not spec.control_diagnostic:
            continue
        for r in conn.execute(
            select(ENROLLMENTS.c.id, ENROLLMENTS.c.business_id, ENROLLMENTS.c.trigger_type)
            .where(ENROLLMENTS.c.campaign_id == campaign_id, ENROLLMENTS.c.arm == "holdout",
                   ENROLLMENTS.c.enrolled_at <= now - dt.timedelta(days=spec.measurement_window), not_asked)
            .order_by(ENROLLMENTS.c.id).limit(limit)
        ):
            if drawn(campaign_id, r.id, spec.control_diagnostic):
                due.append((r.id, campaign_id, r.business_id, r.trigger_type, CONTROL_STEP))
    if not due:
        return Counter()
    views = {}
    for row in conn.execute(select(*VIEW_COLUMNS).where(BUSINESS.c.id.in_(sorted({d[2] for d in due})))):
        views[row[0]] = view_of(tuple(row))
    suppressed = suppressed_for(conn, views.values())
    contexts = _first_contexts(conn, [d[0] for d in due if d[4] == AFTER_CONVERSION_STEP])
    decisions: list[StepDecision] = []
    for enrollment_id, campaign_id, business_id, trigger, step in due:
        b = views.get(business_id)
        if b is None:
            continue

        def stop(reason: str, e=enrollment_id, c=campaign_id, bid=business_id, s=step) -> None:
            decisions.append(StepDecision(e, c, bid, s, None, reason, CHANNELS.channel, TEMPLATE))

        if reason := barred(b):
            stop(reason)
            continue
        if is_paused(b, now):
            continue  # asked again once the pause is over
        channel, recipient, reason = choose_channel(CHANNELS, b, suppressed, unavailable)
        if channel is None:
            stop(reason)
            continue
        spec = rules[campaign_id].spec
        context = contexts.get(enrollment_id) or message_context(
            spec, b, Candidate(None, trigger or "creation", now.date(), b))
        context = dict(context, offers=[], rediagnostic="control" if step == CONTROL_STEP else "after_conversion")
        decisions.append(StepDecision(enrollment_id, campaign_id, business_id, step,
                                      PlannedMessage(step, channel, TEMPLATE, recipient or "", now, context)))
    counts = Counter()
    stored = apply_followups(conn, decisions, now)
    planned = Counter(d.step for d in decisions if d.message is not None)
    if stored:
        counts["rediagnostic_messages"] = planned[AFTER_CONVERSION_STEP]
        counts["control_diagnostic_messages"] = planned[CONTROL_STEP]
    counts.update(f"rediagnostic_stopped_{d.reason}" for d in decisions if d.reason)
    return +counts


def asked(conn: Connection, campaign_id: int) -> dict[str, int]:
    """How many enrollments of each arm were offered the diagnostic again (messages of the two steps)."""
    out = {"treatment": 0, "holdout": 0}
    for arm, n in conn.execute(
        select(ENROLLMENTS.c.arm, func.count(func.distinct(MESSAGES.c.enrollment_id)))
        .select_from(MESSAGES.join(ENROLLMENTS, and_(ENROLLMENTS.c.id == MESSAGES.c.enrollment_id)))
        # `step >= 100` repeats the partial index's predicate so that SQLite, too, reads that index.
        .where(MESSAGES.c.campaign_id == campaign_id, MESSAGES.c.step >= 100, MESSAGES.c.step.in_(STEPS),
               MESSAGES.c.status.in_(("planned", "claimed", "handed_over", "sent", "delivered")))
        .group_by(ENROLLMENTS.c.arm)
    ):
        out[arm] = int(n)
    return out
