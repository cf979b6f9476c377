"""The planning shell's store side: gather the planner's inputs in bulk, apply its decisions in one transaction.

Everything here costs in proportion to the batch (new events, due follow-ups, one slice of an occurrence),
never to the population: segments are evaluated in SQL restricted to the batch's business ids, and every
other lookup goes through an index on business id.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

from sqlalchemy import JSON as JSONType
from sqlalchemy import String, TypeDecorator, and_, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from orchestrator.core.campaign_spec import CampaignSpec, parse_delay
from orchestrator.core.planner import (
    ANSWER_STEP,
    AnswerDue,
    BusinessView,
    CampaignRule,
    Candidate,
    FollowUp,
    GlobalHoldout,
    Plan,
    PlannedMessage,
    StepDecision,
    overlaps,
)
from segments.language import CONVERSION_KINDS
from segments.taxonomy import families, naf_entry
from segments.territory import commune, validate_codes
from store.intermediaries import relayed_enrollments, with_relays
from store.models import (
    Business,
    Campaign,
    CampaignOccurrence,
    Coverage,
    Enrollment,
    Interaction,
    Message,
    MessageEvent,
    Partner,
    TerritoryHoldout,
    TriggerEvent,
)
from store.segment_sql import compile_segment
from store.sql import among, chunks, insert_for
from store.suppressions import suppressed_among

EVENTS = TriggerEvent.__table__
BUSINESS = Business.__table__
CAMPAIGNS = Campaign.__table__
ENROLLMENTS = Enrollment.__table__
MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__
INTERACTIONS = Interaction.__table__
OCCURRENCES = CampaignOccurrence.__table__
COVERAGE = Coverage.__table__
HOLDOUTS = TerritoryHoldout.__table__
PARTNERS = Partner.__table__

# Messages that count against the pressure caps: planned or on their way, not those that never left
# (`unknown`: handed over without an answer, it may have arrived).
LIVE_STATUSES = ("planned", "claimed", "handed_over", "sent", "delivered", "unknown")
ID_CHUNK = 2000
_PG_DIALECT = postgresql.dialect()


# What `business_view` reads: selecting only these keeps row building cheap on wide tables.
VIEW_COLUMNS = [BUSINESS.c[name] for name in (
    "id", "siret", "name", "naf_code", "metier_family", "commune_code", "city", "epci_code", "departement_code",
    "region_code", "postal_code", "street", "state", "do_not_contact", "email", "phone", "phone_consent",
    "email_source", "phone_source", "address_source", "paused_until", "free_offers_only")]


@lru_cache(maxsize=4096)
def _naf(code: str):
    return naf_entry(code)


@lru_cache(maxsize=65536)
def _commune(code: str):
    return commune(code)


def business_view(row) -> BusinessView:
    """The planner's view of a business row or object with the `VIEW_COLUMNS` attributes (those from
    `phone_consent` on may be missing: no consent, no source, no pause)."""
    return view_of(tuple(getattr(row, column.name, None) for column in VIEW_COLUMNS))


def view_of(values: Sequence) -> BusinessView:
    """The planner's view of a business from a plain tuple in `VIEW_COLUMNS` order (the hot path: no attribute
    lookups; reference lookups are in-memory)."""
    (id_, siret, name, naf_code, family_key, commune_code, city, epci, dep, region, postal_code, street, state,
     do_not_contact, email, phone, consent, email_source, phone_source, address_source, paused_until,
     free_only) = values
    naf = _naf(naf_code) if naf_code else None
    fam = families().get(family_key or "")
    place = _commune(commune_code) if commune_code else None
    postal = None
    if street and postal_code and city:
        postal = "\n".join(x for x in (name, street, f"{postal_code} {city.upper()}") if x)
    return BusinessView(
        id_, siret, name, naf.metier if naf else (fam.label.lower() if fam else "entreprise"), family_key,
        fam.label if fam else "Autres activités", commune_code, place.nom if place else city, epci, dep, region,
        postal_code, state, do_not_contact, email, phone, postal, bool(consent), naf_code, email_source, phone_source,
        address_source, None, _maybe_aware(paused_until), bool(free_only))


def _array_type(column) -> str:
    col_type = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    # Strings as VARCHAR: a cast to VARCHAR(n) would cut a value too long, where the INSERT refuses it.
    return "VARCHAR" if isinstance(col_type, String) else col_type.compile(dialect=_PG_DIALECT)


# json.dumps's text, by one encoder made once and without the check for circular references (a context is a tree):
# a fifth less of the 5 s that encoding 400,000 message contexts costs.
_json_text = json.JSONEncoder(check_circular=False).encode


def encoded_contexts(conn: Connection, plan: Plan) -> dict[int, str] | None:
    """PostgreSQL: the JSON text of each planned message's context, by the context's id, for `apply_plan` (the text
    `array_insert` would write). A batch in parts encodes them on its deciding side, while the part before is being
    stored, so that the storing side, the longer one, only waits for the server (4 s of 400,000 contexts).
    None on another store, where SQLAlchemy's JSON type encodes them."""
    if conn.dialect.name != "postgresql":
        return None
    return {id(m.context): _json_text(m.context) for e in plan.enrollments for m in e.messages}


def array_insert(conn: Connection, table, rows: list[dict], encoded: dict[int, str] | None = None
                 ) -> tuple[str, tuple] | None:
    """PostgreSQL: the statement and parameters that INSERT rows (all with the same keys) as one array per column,
    `INSERT ... SELECT * FROM unnest(...)`. None on another store, or when a column left out has a default
    computed in Python: the caller's SQLAlchemy INSERT runs then.

    Why: a multi-row VALUES of 1,000 enrollments has 11,000 parameters, which psycopg parses anew every time
    (30 ms; a third of a 400,000-business occurrence); eleven array parameters are parsed once, and sent in
    binary (a text array escapes every quote of every JSON context, in Python: 68 ms per 1,000 messages).
    `encoded`: JSON values already encoded, their text by the value's id (`encoded_contexts`)."""
    if conn.dialect.name != "postgresql" or not rows:
        return None
    names = list(rows[0])
    if any(c.default is not None for c in table.c if c.name not in names):
        return None
    columns = [table.c[n] for n in names]
    arrays = []
    for name, column in zip(names, columns, strict=True):
        values = [r[name] for r in rows]
        # What SQLAlchemy's JSON type writes: json.dumps of the value (None as JSON null).
        if isinstance(column.type, JSONType):
            known = (encoded or {}).get
            values = [known(id(v)) or _json_text(v) for v in values]
        arrays.append(values)
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest("
           f"{', '.join(f'%b::{_array_type(c)}[]' for c in columns)})")
    return sql, tuple(arrays)


def insert_arrays(conn: Connection, table, rows: list[dict], tail: str = "") -> list[tuple] | None:
    """`array_insert` run, with `tail` (ON CONFLICT ..., RETURNING ...) after it; the returned rows as tuples.
    None when `array_insert` gives nothing."""
    found = array_insert(conn, table, rows)
    if found is None:
        return None
    result = conn.exec_driver_sql(f"{found[0]} {tail}", found[1])
    return [tuple(r) for r in result] if result.returns_rows else []


def _maybe_aware(value: dt.datetime | None) -> dt.datetime | None:
    return None if value is None else _aware(value)


def pending_candidates(conn: Connection, limit: int, after: int = 0) -> tuple[list[int], list[Candidate]]:
    """The oldest unplanned events after event id `after` (all of them, for marking) and those about a known
    business."""
    rows = conn.execute(
        select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.occurred_on, *VIEW_COLUMNS, EVENTS.c.source, PARTNERS.c.name)
        .select_from(EVENTS.outerjoin(BUSINESS, BUSINESS.c.id == EVENTS.c.business_id)
                     .outerjoin(PARTNERS, PARTNERS.c.id == EVENTS.c.partner_id))
        .where(EVENTS.c.planned.is_(False), EVENTS.c.status == "accepted", EVENTS.c.id > after)
        .order_by(EVENTS.c.id)
        .limit(limit)
    ).all()
    event_ids = [r[0] for r in rows]
    # Payloads are read only for the few deadline events (decoding every payload costs more than the rest).
    deadline_ids = [r[0] for r in rows if r[1] == "deadline"]
    payloads: dict[int, dict] = {}
    for part in chunks(deadline_ids, ID_CHUNK):
        payloads.update(conn.execute(select(EVENTS.c.id, EVENTS.c.payload).where(EVENTS.c.id.in_(part))).all())
    # the event's source as a message says it: a partner by its name, never "partner:<id>" (GDPR art. 14)
    candidates = [Candidate(r[0], r[1], r[2], view_of(tuple(r)[3:-2]), deadline=deadline_of(r[1], payloads.get(r[0])),
                            source=r[-1] or r[-2])
                  for r in rows if r[4] is not None]
    return event_ids, with_relays(conn, candidates)


def deadline_of(event_type: str, payload: dict | None) -> dict | None:
    """The template's `deadline` {label, date, receive_date, issue_date} from a regulatory calendar event's payload
    (the duty dates of the company's category, None when the deadline does not state them)."""
    if event_type != "deadline" or not payload or not payload.get("deadline_date"):
        return None
    return {"label": payload.get("title") or payload.get("deadline"), "date": payload["deadline_date"],
            "receive_date": payload.get("receive_date"), "issue_date": payload.get("issue_date")}


def active_campaigns(conn: Connection, broken: dict[int, Exception] | None = None) -> list[CampaignRule]:
    """Campaigns that may enrol now.

    A stored spec that no longer validates (written around the checks, or by an older version) raises, or,
    when `broken` is given, is left out and its error put there by campaign id: one campaign's spec must not
    stop the planning of all the others.
    """
    rows = conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.version, CAMPAIGNS.c.spec)
                        .where(CAMPAIGNS.c.status == "active").order_by(CAMPAIGNS.c.id))
    rules = []
    for campaign_id, version, spec in rows:
        try:
            rules.append(CampaignRule(campaign_id, version, CampaignSpec.model_validate(spec)))
        except Exception as exc:  # noqa: BLE001 (any error of one spec is that campaign's, reported by id)
            if broken is None:
                raise
            broken[campaign_id] = exc
    return rules


def pause_campaigns(conn: Connection, reasons: dict[int, str], now: dt.datetime) -> dict[int, str]:
    """Pause these active campaigns with their reason (plain French, shown to the operator); returns the
    campaigns actually paused by name. Their planned messages wait in place until someone resumes them."""
    paused: dict[int, str] = {}
    for campaign_id, reason in reasons.items():
        name = conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id, CAMPAIGNS.c.status == "active")
                            .values(status="paused", paused_reason=reason, paused_at=now, updated_at=now)
                            .returning(CAMPAIGNS.c.name)).scalar()
        if name is not None:
            paused[campaign_id] = name
    return paused


def campaign_names(conn: Connection, campaign_ids: Iterable[int]) -> dict[int, str]:
    """Campaign names by id."""
    return dict(conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.name)
                             .where(CAMPAIGNS.c.id.in_(sorted(set(campaign_ids))))).all())


def segment_clause(spec: CampaignSpec, today: dt.date):
    """The campaign's compiled segment, with its effective territory (the owner's when the segment names none)."""
    return compile_segment(spec.segment, today=today, territory=spec.effective_territory())


def segment_total(conn: Connection, spec: CampaignSpec, today: dt.date) -> int:
    """How many known businesses the campaign's segment selects today."""
    return int(conn.execute(select(func.count()).select_from(BUSINESS)
                            .where(segment_clause(spec, today))).scalar_one())


def segment_sample(conn: Connection, spec: CampaignSpec, today: dt.date):
    """The first business (by id) the campaign's segment selects today, a whole row, or None: the one a preview
    renders the campaign's messages for."""
    return conn.execute(select(BUSINESS).where(segment_clause(spec, today)).order_by(BUSINESS.c.id).limit(1)).first()


def business_view_by_id(conn: Connection, business_id: int) -> BusinessView | None:
    """The planner's view of one business (its trade, place, contacts), or None when there is no such business."""
    row = conn.execute(select(*VIEW_COLUMNS).where(BUSINESS.c.id == business_id)).first()
    return view_of(tuple(row)) if row is not None else None


def eligible_among(conn: Connection, rules: Sequence[CampaignRule], candidates: Sequence[Candidate],
                   today: dt.date) -> dict[int, set[int]]:
    """For each triggered campaign, the candidates' business ids its compiled segment selects (SQL, by id)."""
    out: dict[int, set[int]] = {}
    for rule in rules:
        ids = sorted({c.business.id for c in candidates if c.type in rule.spec.triggers})
        found: set[int] = set()
        if ids:
            clause = segment_clause(rule.spec, today)
            for part in chunks(ids, ID_CHUNK):
                found.update(r[0] for r in conn.execute(
                    select(BUSINESS.c.id).where(among(conn, BUSINESS.c.id, part), clause)))
        out[rule.id] = found
    return out


class StoredEnrollments:
    """What the planner needs of the enrollments already stored for some businesses, from one read of them:
    `keys`, the (campaign, business, trigger key) stored; `moments`, (business, moment) -> (campaign, arm) of the
    enrollment that owns each moment (the first one stored); and, by `recent`, the businesses an earlier occurrence
    of a scheduled campaign enrolled (treatment) within its minimum interval."""

    __slots__ = ("keys", "moments", "_rows")

    def __init__(self, rows: Iterable[tuple[int, int, str, str, str | None]]):
        """`rows`: (campaign, business, trigger key, arm, moment) in the order they were stored (by id)."""
        self._rows = rows = list(rows)
        self.keys: set[tuple[int, int, str]] = {(c, b, k) for c, b, k, _, _ in rows}
        self.moments: dict[tuple[int, str], tuple[int, str]] = {}
        for campaign_id, business_id, _, arm, moment in rows:
            if moment is not None:
                self.moments.setdefault((business_id, moment), (campaign_id, arm))  # the first enrollment owns it

    def recent(self, rule: CampaignRule, at: dt.datetime) -> set[tuple[int, int]]:
        """(campaign, business) pairs enrolled (treatment) by an earlier occurrence within the minimum interval."""
        interval = parse_delay(rule.spec.schedule.min_interval) if rule.spec.schedule else dt.timedelta(0)
        # Occurrence keys hold the UTC instant in one ISO format, so they compare in time order as strings.
        lower, current = occurrence_key(at - interval), occurrence_key(at)
        return {(c, b) for c, b, k, arm, _ in self._rows
                if c == rule.id and arm == "treatment" and lower < k < current}


def stored_enrollments(conn: Connection, business_ids: Iterable[int]) -> StoredEnrollments:
    """The enrollments already stored for these businesses, one indexed read by business id (a few rows each)."""
    rows: list[tuple] = []
    e = ENROLLMENTS.c
    for part in chunks(sorted(set(business_ids)), ID_CHUNK):
        rows += conn.execute(select(e.id, e.campaign_id, e.business_id, e.trigger_key, e.arm, e.moment)
                             .where(among(conn, e.business_id, part))).all()
    rows.sort()  # by id: the order they were stored in, which decides a moment's owner
    return StoredEnrollments(r[1:] for r in rows)


def global_holdouts(conn: Connection) -> list[GlobalHoldout]:
    """The territories' global control groups set by an operator (`declic territories holdout`)."""
    return [GlobalHoldout(r.level, r.code, float(r.percent))
            for r in conn.execute(select(HOLDOUTS).where(HOLDOUTS.c.percent > 0).order_by(HOLDOUTS.c.id))]


def suppressed_for(conn: Connection, views: Iterable[BusinessView]) -> set[tuple[str, str]]:
    """Opt-outs among these businesses' addresses."""
    views = list(views)
    emails = [b.email for b in views if b.email]
    phones = [b.phone for b in views if b.phone]
    out: set[tuple[str, str]] = set()
    for part in chunks(emails, ID_CHUNK):
        out |= {("email", a) for a in suppressed_among(conn, "email", part)}
    for part in chunks(phones, ID_CHUNK):
        out |= {("phone", a) for a in suppressed_among(conn, "phone", part)}
    return out


def message_history(conn: Connection, business_ids: Iterable[int], since: dt.datetime
                    ) -> dict[int, list[tuple[int, dt.datetime]]]:
    """(campaign id, instant) of every live message of these businesses since `since`, across all campaigns."""
    at = func.coalesce(MESSAGES.c.sent_at, MESSAGES.c.due_at)
    out: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
    for part in chunks(sorted(set(business_ids)), ID_CHUNK):
        rows = conn.execute(select(MESSAGES.c.business_id, MESSAGES.c.campaign_id, MESSAGES.c.sent_at,
                                   MESSAGES.c.due_at)
                            .where(among(conn, MESSAGES.c.business_id, part), MESSAGES.c.status.in_(LIVE_STATUSES),
                                   at >= since))
        for business_id, campaign_id, sent_at, due_at in rows:
            moment = sent_at or due_at
            out[business_id].append((campaign_id, moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)))
    return out


def occurrence_key(at: dt.datetime) -> str:
    """The enrollment trigger key of a scheduled occurrence: `occurrence:<UTC ISO instant>`."""
    return f"occurrence:{at.astimezone(dt.UTC).replace(microsecond=0).isoformat()}"


def max_cap_days(rules: Sequence[CampaignRule], policy_caps: Sequence[tuple[int, int]]) -> int:
    """The longest cap span in play: history older than that cannot matter."""
    spans = [d for _, d in policy_caps] + [c.days for r in rules for c in r.spec.pressure.caps]
    return max(spans or [30])


def _message_row(campaign_id: int, enrollment_id: int, business_id: int, m, now: dt.datetime,
                 status: str = "planned", error: str | None = None) -> dict:
    return {"campaign_id": campaign_id, "enrollment_id": enrollment_id, "business_id": business_id,
            "step": m.step, "channel": m.channel, "template": m.template, "variant": m.variant,
            "recipient": m.recipient, "due_at": m.due_at.astimezone(dt.UTC), "status": status, "attempts": 0,
            "context": m.context, "created_at": now, "last_error": error}


def apply_plan(conn: Connection, plan: Plan, event_ids: list[int], now: dt.datetime,
               encoded: dict[int, str] | None = None) -> dict[str, int]:
    """Store enrollments and their messages, and mark the events planned; idempotent on rerun.

    `now` (the injected clock) stamps the enrollments: monthly ambassador capacities count on it. `encoded`: the
    messages' contexts already encoded (`encoded_contexts`).
    """
    planned_messages = 0
    for part in chunks(plan.enrollments, 1000):
        rows = [{"campaign_id": e.campaign_id, "business_id": e.business_id, "trigger_event_id": e.event_id,
                 "trigger_key": e.trigger_key, "trigger_type": e.trigger_type, "arm": e.arm, "variant": e.variant,
                 "campaign_version": e.campaign_version, "enrolled_at": now, "ambassador_id": e.ambassador_id,
                 "moment": e.moment}
                for e in part]
        result = insert_arrays(conn, ENROLLMENTS, rows, "ON CONFLICT (campaign_id, business_id, trigger_key) "
                               "DO NOTHING RETURNING id, campaign_id, business_id, trigger_key")
        if result is None:
            stmt = insert_for(conn, ENROLLMENTS).on_conflict_do_nothing(
                index_elements=["campaign_id", "business_id", "trigger_key"])
            result = conn.execute(stmt.returning(ENROLLMENTS.c.id, ENROLLMENTS.c.campaign_id,
                                                 ENROLLMENTS.c.business_id, ENROLLMENTS.c.trigger_key), rows).all()
        new_ids = {(c, b, k): i for i, c, b, k in result}
        messages = []
        for e in part:
            enrollment_id = new_ids.get((e.campaign_id, e.business_id, e.trigger_key))
            if enrollment_id is None:
                continue  # enrolled by a concurrent or earlier run
            messages += [_message_row(e.campaign_id, enrollment_id, e.business_id, m, now) for m in e.messages]
        if messages:
            # Every message of a new enrollment is new: a plain insert, and their history in one statement.
            found = array_insert(conn, MESSAGES, messages, encoded)
            if found is not None:  # PostgreSQL: the messages and their history in one statement, no look-up
                sql, params = found
                conn.exec_driver_sql(f"WITH new AS ({sql} RETURNING id, status) INSERT INTO {HISTORY.name} "
                                     "(message_id, status, at) SELECT id, status, %b FROM new", (*params, now))
            else:
                conn.execute(MESSAGES.insert(), messages)
                new_enrollments = sorted({m["enrollment_id"] for m in messages})
                conn.execute(HISTORY.insert().from_select(
                    ["message_id", "status", "at"],
                    select(MESSAGES.c.id, MESSAGES.c.status, literal(now, MESSAGES.c.created_at.type))
                    .where(MESSAGES.c.enrollment_id.in_(new_enrollments))))
            planned_messages += len(messages)
    for part in chunks(plan.covered, 1000):
        stmt = insert_for(conn, COVERAGE).on_conflict_do_nothing(
            index_elements=["campaign_id", "business_id", "trigger_key"])
        conn.execute(stmt, [{"campaign_id": c.campaign_id, "business_id": c.business_id,
                             "trigger_event_id": c.event_id, "trigger_key": c.trigger_key,
                             "trigger_type": c.trigger_type, "moment": c.moment, "kind": c.kind,
                             "covered_by": c.covered_by, "reason": c.reason[:300], "at": now} for c in part])
    for part in chunks(event_ids, ID_CHUNK):
        conn.execute(update(EVENTS).where(among(conn, EVENTS.c.id, part)).values(planned=True))
    return {"events": len(event_ids), "enrolled": len(plan.enrollments), "messages": planned_messages,
            "skipped": len(plan.skipped), "ambassador_gaps": plan.ambassador_gaps, "covered": len(plan.covered)}


def _insert_messages(conn: Connection, messages: list[dict], now: dt.datetime) -> int:
    if not messages:
        return 0
    stmt = insert_for(conn, MESSAGES).on_conflict_do_nothing(index_elements=["enrollment_id", "step"])
    inserted = conn.execute(stmt.returning(MESSAGES.c.id, MESSAGES.c.status, MESSAGES.c.last_error),
                            messages).all()
    conn.execute(HISTORY.insert(), [{"message_id": i, "status": s, "at": now, "detail": e} for i, s, e in inserted])
    return sum(1 for _, s, _ in inserted if s == "planned")


# --- later steps ---


def due_followups(conn: Connection, rules: Sequence[CampaignRule], now: dt.datetime, limit: int
                  ) -> list[FollowUp]:
    """Journeys whose last message left (or failed for good) long enough ago for the next step to be due."""
    nxt = MESSAGES.alias("nxt")
    moment = func.coalesce(MESSAGES.c.sent_at, MESSAGES.c.due_at)
    rows: list = []
    for rule in rules:
        steps = rule.spec.steps
        for k in range(len(steps) - 1):
            if len(rows) >= limit:
                break
            rows += conn.execute(
                select(MESSAGES.c.id, MESSAGES.c.enrollment_id, MESSAGES.c.campaign_id, MESSAGES.c.business_id,
                       MESSAGES.c.step, MESSAGES.c.context, MESSAGES.c.variant, moment.label("moment"),
                       ENROLLMENTS.c.enrolled_at, ENROLLMENTS.c.not_for_me_action)
                .select_from(MESSAGES.join(ENROLLMENTS, ENROLLMENTS.c.id == MESSAGES.c.enrollment_id))
                .where(MESSAGES.c.campaign_id == rule.id, MESSAGES.c.step == k, not_paused(MESSAGES.c.business_id, now),
                       MESSAGES.c.status.in_(("sent", "delivered", "failed")),
                       moment <= now - steps[k + 1].delay_td,
                       ~exists(select(nxt.c.id).where(nxt.c.enrollment_id == MESSAGES.c.enrollment_id,
                                                      nxt.c.step == k + 1)))
                .order_by(MESSAGES.c.id).limit(limit - len(rows))).all()
    if not rows:
        return []
    message_ids = [r.id for r in rows]
    business_ids = sorted({r.business_id for r in rows})
    clicked: set[int] = set()
    for part in chunks(message_ids, ID_CHUNK):
        clicked |= {r[0] for r in conn.execute(select(INTERACTIONS.c.message_id).where(
            INTERACTIONS.c.message_id.in_(part), INTERACTIONS.c.kind == "click"))}
    conversions: dict[int, list[dt.datetime]] = defaultdict(list)
    views: dict[int, BusinessView] = {}
    for part in chunks(business_ids, ID_CHUNK):
        for business_id, at in conn.execute(select(INTERACTIONS.c.business_id, INTERACTIONS.c.at).where(
                INTERACTIONS.c.business_id.in_(part), INTERACTIONS.c.kind.in_(CONVERSION_KINDS))):
            conversions[business_id].append(_aware(at))
        for row in conn.execute(select(*VIEW_COLUMNS).where(BUSINESS.c.id.in_(part))):
            views[row[0]] = view_of(tuple(row))
    relayed = relayed_enrollments(conn, [r.enrollment_id for r in rows])
    out = []
    for r in rows:
        if r.business_id not in views:
            continue
        enrolled_at = _aware(r.enrolled_at)
        out.append(FollowUp(r.enrollment_id, r.campaign_id, views[r.business_id], r.step + 1, _aware(r.moment),
                            r.id in clicked, any(at >= enrolled_at for at in conversions.get(r.business_id, [])),
                            r.context, r.variant, r.enrollment_id in relayed, r.not_for_me_action))
    return with_relays(conn, out)


def not_paused(business_id_column, now: dt.datetime):
    """A clause: the business of `business_id_column` is not paused at `now` ("pas le moment")."""
    return business_id_column.not_in(select(BUSINESS.c.id).where(BUSINESS.c.paused_until > now))


def due_answer_messages(conn: Connection, rules: Sequence[CampaignRule], now: dt.datetime, limit: int
                        ) -> list[AnswerDue]:
    """Enrollments whose "pas pour moi" answer asked for a message of its own (after a pause, a testimony) that is
    due now and not planned yet; the context is that of the journey's first message."""
    ids = [r.id for r in rules]
    if not ids:
        return []
    own = MESSAGES.alias("own")
    first = MESSAGES.alias("first")
    rows = conn.execute(
        select(ENROLLMENTS.c.id, ENROLLMENTS.c.campaign_id, ENROLLMENTS.c.business_id, ENROLLMENTS.c.not_for_me_action,
               ENROLLMENTS.c.answer_due_at, first.c.context)
        .select_from(ENROLLMENTS.join(first, and_(first.c.enrollment_id == ENROLLMENTS.c.id, first.c.step == 0)))
        # Found through the partial index of the answers due (`ix_enrollment_answer_due`, a few rows), never by
        # campaign (`+ 0`): SQLite would read every enrollment of the campaigns, on every planning batch.
        .where((ENROLLMENTS.c.campaign_id + 0).in_(ids), ENROLLMENTS.c.answer_due_at.is_not(None),
               ENROLLMENTS.c.answer_due_at <= now, not_paused(ENROLLMENTS.c.business_id, now),
               ~exists(select(own.c.id).where(own.c.enrollment_id == ENROLLMENTS.c.id, own.c.step == ANSWER_STEP)))
        .order_by(ENROLLMENTS.c.answer_due_at, ENROLLMENTS.c.id).limit(limit)).all()
    if not rows:
        return []
    views = {}
    for part in chunks(sorted({r.business_id for r in rows}), ID_CHUNK):
        for row in conn.execute(select(*VIEW_COLUMNS).where(BUSINESS.c.id.in_(part))):
            views[row[0]] = view_of(tuple(row))
    return [AnswerDue(r.id, r.campaign_id, views[r.business_id], r.not_for_me_action, _aware(r.answer_due_at),
                      r.context or {}) for r in rows if r.business_id in views]


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def apply_followups(conn: Connection, decisions: Sequence[StepDecision], now: dt.datetime) -> dict[str, int]:
    """Store the next steps: a planned message, or a cancelled one that records why the journey stops there."""
    rows = []
    for d in decisions:
        if d.message is not None:
            rows.append(_message_row(d.campaign_id, d.enrollment_id, d.business_id, d.message, now))
        else:

            # A row per stopped step keeps it from being judged again on the next run.
            stub = PlannedMessage(d.step, d.channel or "email", d.template or "-", "", now, {}, None)
            rows.append(_message_row(d.campaign_id, d.enrollment_id, d.business_id, stub, now, "cancelled",
                                     d.reason))
    planned = _insert_messages(conn, rows, now)
    return {"followup_messages": planned, "followup_stopped": sum(1 for d in decisions if d.message is None)}


# --- scheduled occurrences ---


def running_occurrence(conn: Connection, campaign_id: int):
    """The occurrence of a campaign still being planned, if any."""
    return conn.execute(select(OCCURRENCES).where(OCCURRENCES.c.campaign_id == campaign_id,
                                                  OCCURRENCES.c.status == "running")
                        .order_by(OCCURRENCES.c.occurs_at).limit(1)).first()


def last_occurrence(conn: Connection, campaign_id: int) -> dt.datetime | None:
    """The latest occurrence already started for a campaign."""
    value = conn.execute(select(func.max(OCCURRENCES.c.occurs_at))
                         .where(OCCURRENCES.c.campaign_id == campaign_id)).scalar()
    return _aware(value) if value else None


def start_occurrence(conn: Connection, campaign_id: int, occurs_at: dt.datetime, missed: int,
                     now: dt.datetime) -> None:
    """Record an occurrence as started (once: unique per campaign and instant)."""
    stmt = insert_for(conn, OCCURRENCES).on_conflict_do_nothing(index_elements=["campaign_id", "occurs_at"])
    conn.execute(stmt, {"campaign_id": campaign_id, "occurs_at": occurs_at, "status": "running", "cursor": 0,
                        "enrolled": 0, "missed": missed, "started_at": now})


def occurrence_slice(conn: Connection, spec: CampaignSpec, after_id: int, limit: int, today: dt.date
                     ) -> list[BusinessView]:
    """The next businesses of the segment as of now, by id after the cursor (keyset: no OFFSET scan)."""
    rows = conn.execute(select(*VIEW_COLUMNS).where(BUSINESS.c.id > after_id, segment_clause(spec, today))
                        .order_by(BUSINESS.c.id).limit(limit)).all()  # fetched at once, not row by row
    return with_relays(conn, [view_of(r) for r in rows])


def advance_occurrence(conn: Connection, occurrence_id: int, cursor: int, enrolled: int, done: bool,
                       now: dt.datetime) -> None:
    """Move an occurrence's cursor on, and close it when the segment is exhausted."""
    values = {"cursor": cursor, "enrolled": OCCURRENCES.c.enrolled + enrolled}
    if done:
        values.update(status="done", finished_at=now)
    conn.execute(update(OCCURRENCES).where(OCCURRENCES.c.id == occurrence_id).values(**values))


def segment_counts(conn: Connection, spec_segment, *, today: dt.date, territory=None, by=("family", "departement")
                   ) -> list[tuple]:
    """Counts of the businesses a segment selects, grouped by métier family and territory level."""
    columns = {"family": BUSINESS.c.metier_family, "departement": BUSINESS.c.departement_code,
               "epci": BUSINESS.c.epci_code, "commune": BUSINESS.c.commune_code, "region": BUSINESS.c.region_code}
    group = [columns[b] for b in by]
    clause = compile_segment(spec_segment, today=today, territory=territory)
    return conn.execute(select(*group, func.count()).where(and_(clause)).group_by(*group).order_by(*group)).all()


# --- global control groups per territory ---

HOLDOUT_LEVELS = ("commune", "epci", "departement", "region")
MAX_GLOBAL_HOLDOUT = 10.0  # percent: a global control group is a small share


def parse_holdout(place: str, share: str) -> tuple[str, str, float]:
    """("departement", "35", 2.0) from "departement:35" and "2%"; a French ValueError otherwise."""
    level, _, code = place.partition(":")
    level, code = level.strip().lower(), code.strip()
    if level not in HOLDOUT_LEVELS or not code:
        raise ValueError(f"territoire illisible : {place!r} (exemples : departement:35, epci:243500139)")
    if validate_codes(level, [code]):
        raise ValueError(f"territoire inconnu : {level} {code}")
    try:
        percent = float(share.strip().rstrip("%").strip().replace(",", "."))
    except ValueError as exc:
        raise ValueError(f"part illisible : {share!r} (exemple : 2%)") from exc
    if not 0 <= percent <= MAX_GLOBAL_HOLDOUT:
        raise ValueError(f"la part du groupe témoin global est comprise entre 0 et {MAX_GLOBAL_HOLDOUT:g} %")
    return level, code, percent


def set_territory_holdout(conn: Connection, level: str, code: str, percent: float, by: str,
                          now: dt.datetime) -> None:
    """Set (or change, or with 0 end) a territory's global control group."""
    found = conn.execute(select(HOLDOUTS.c.id).where(HOLDOUTS.c.level == level, HOLDOUTS.c.code == code)).scalar()
    values = {"percent": percent, "set_by": by[:120], "set_at": now}
    if found is None:
        conn.execute(HOLDOUTS.insert().values(level=level, code=code, **values))
    else:
        conn.execute(update(HOLDOUTS).where(HOLDOUTS.c.id == found).values(**values))


# --- overlaps between campaigns (issue 20) ---


def campaign_overlaps(conn: Connection, spec: CampaignSpec, campaign_id: int | None, today: dt.date, *,
                      counted: dict[tuple[int, int], int] | None = None) -> list[dict]:
    """The active campaigns of other owners that overlap this one (same trigger, intersecting territory and
    segment): who they are, who wins the arbitration, how many businesses both segments select today, and
    how many each has left to the other so far. `counted`: businesses both select, by the other campaign's
    (id, version), as a rollup kept them (`store.report.rollup_overlap_counts`); the others are counted now."""
    rule = CampaignRule(campaign_id or 0, 1, spec)
    found = overlaps(rule, active_campaigns(conn, {}))
    out = []
    for o in found:
        both = (counted or {}).get((o.other.id, o.other.version))
        if both is None:
            both = conn.execute(select(func.count()).select_from(BUSINESS).where(
                segment_clause(spec, today), segment_clause(o.other.spec, today))).scalar() or 0
        left_to_it = left_to_us = 0
        if campaign_id:
            counts = dict(conn.execute(
                select(COVERAGE.c.campaign_id, func.count()).where(
                    COVERAGE.c.kind == "covered",
                    ((COVERAGE.c.campaign_id == campaign_id) & (COVERAGE.c.covered_by == o.other.id))
                    | ((COVERAGE.c.campaign_id == o.other.id) & (COVERAGE.c.covered_by == campaign_id)))
                .group_by(COVERAGE.c.campaign_id)).all())
            left_to_it, left_to_us = counts.get(campaign_id, 0), counts.get(o.other.id, 0)
        winner = spec if o.winner_id == rule.id else o.other.spec
        out.append({"id": o.other.id, "name": o.other.spec.name, "owner": o.other.spec.signed_by(),
                    "triggers": list(o.triggers), "businesses": int(both),
                    "winner": winner.name, "winner_owner": winner.signed_by(),
                    "outcome": f"{'cette campagne' if o.winner_id == rule.id else o.other.spec.name} "
                               f"accompagne les entreprises communes ({winner.signed_by()})",
                    "covered_by_it": int(left_to_it), "covered_by_us": int(left_to_us)})
    return out


# What would leave (orchestrator.app.message_preview): a message already planned, else the event it would answer.


def planned_message(conn: Connection, campaign_id: int, business_id: int, channel: str, template: str):
    """The campaign's first message still planned for this business on `channel` with `template` (the one the
    dispatcher will send), or None."""
    m = MESSAGES.c
    return conn.execute(select(MESSAGES).where(m.campaign_id == campaign_id, m.business_id == business_id,
                                               m.channel == channel, m.template == template, m.status == "planned")
                        .order_by(m.step, m.id).limit(1)).first()


def latest_event(conn: Connection, business_id: int, event_type: str):
    """The business's latest event of `event_type` (id, occurred_on, payload, source, name: its partner's, if
    any), or None."""
    e = EVENTS.c
    return conn.execute(select(e.id, e.occurred_on, e.payload, e.source, PARTNERS.c.name)
                        .outerjoin(PARTNERS, PARTNERS.c.id == e.partner_id)
                        .where(e.business_id == business_id, e.type == event_type)
                        .order_by(e.occurred_on.desc(), e.id.desc()).limit(1)).first()
