"""Metrics queries: a campaign's funnel rows (live, or from the nightly rollup), the report built on
them, and the per-business timeline. The maths is in `orchestrator.core.stats`.

Live rows group a campaign's enrollments by arm, variant, trigger, métier family, commune and channel
in one statement (two per-enrollment aggregates joined to the enrollments). At millions of messages
the nightly rollup (`refresh_rollup`: the same statement's rows reduced to their marginals, with the adoption
figures beside them) answers instead, as of its refresh.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, literal, or_, select
from sqlalchemy.engine import Connection, Engine

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.diagnostic import stored_levels
from orchestrator.core.labels import CHANNELS, TRIGGERS
from orchestrator.core.labels import MESSAGE_STATUS as MESSAGE_STATUS_LABELS
from orchestrator.core.labels import NOT_FOR_ME as NOT_FOR_ME_LABELS
from orchestrator.core.stats import DIMENSIONS, CampaignReport, FunnelRow, build_report, marginals
from segments.taxonomy import families
from segments.territory import commune, departements, epcis
from store.conversions import ADOPTION_KIND, CONVERSION_KINDS, RESPONSE_KINDS, attribute_conversions
from store.models import (
    AdoptionRollup,
    Business,
    CallTask,
    Campaign,
    Coverage,
    Enrollment,
    FunnelRollup,
    GlobalEffectRollup,
    Interaction,
    Message,
    MessageEvent,
    OverlapRollup,
    TerritoryHoldout,
    TriggerEvent,
)
from store.planning import campaign_overlaps
from store.rediagnostic import asked
from store.segment_sql import place_clause
from triggers.model import ADOPTION_CATEGORIES

BUSINESS = Business.__table__
CAMPAIGNS = Campaign.__table__
ENROLLMENTS = Enrollment.__table__
MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__
ROLLUP = FunnelRollup.__table__
ADOPTION_ROLLUP = AdoptionRollup.__table__
GLOBAL_ROLLUP = GlobalEffectRollup.__table__
OVERLAP_ROLLUP = OverlapRollup.__table__
HISTORY = MessageEvent.__table__
EVENTS = TriggerEvent.__table__
TASKS = CallTask.__table__
COVERAGE = Coverage.__table__

DIMENSION_COLUMNS = ("arm", *DIMENSIONS)
COUNT_COLUMNS = (
    "contacted_converted",
    "targeted",
    "contacted",
    "delivered",
    "clicked",
    "responded",
    "converted",
    "opted_out",
    "conversion_days",
)
# Channels that report no delivery receipt: a message handed over counts as received (a bounce turns it
# to failed). SMS providers send receipts, so an SMS counts only once "delivered".
NO_RECEIPT_CHANNELS = ("email", "letter", "call", "webhook")


def _days_between(conn: Connection, later, earlier):
    """Days between two timestamps, as a float, in this dialect."""
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def funnel_select(conn: Connection, campaign_ids: list[int] | None):
    """The grouped funnel of some campaigns (all when None): one row per campaign and dimension values."""
    m, i, e, b = MESSAGES, INTERACTIONS, ENROLLMENTS, BUSINESS
    handed = m.c.status.in_(("sent", "delivered"))
    per_msg = select(
        m.c.enrollment_id,
        func.min(case((m.c.step == 0, m.c.channel))).label("channel"),
        func.max(case((handed, 1), else_=0)).label("contacted"),
        func.max(
            case(
                (m.c.status == "delivered", 1),
                (and_(m.c.status == "sent", m.c.channel.in_(NO_RECEIPT_CHANNELS)), 1),
                else_=0,
            )
        ).label("delivered"),
    ).group_by(m.c.enrollment_id)
    per_int = (
        select(
            i.c.enrollment_id,
            func.max(case((i.c.kind == "click", 1), else_=0)).label("clicked"),
            func.max(case((i.c.kind.in_(RESPONSE_KINDS), 1), else_=0)).label("responded"),
            func.max(case((i.c.kind == "unsubscribe", 1), else_=0)).label("opted_out"),
            func.min(case((i.c.kind.in_(CONVERSION_KINDS), i.c.at))).label("converted_at"),
        )
        .where(i.c.enrollment_id.is_not(None))
        .group_by(i.c.enrollment_id)
    )
    if campaign_ids is not None:
        per_msg = per_msg.where(m.c.campaign_id.in_(campaign_ids))
        per_int = per_int.where(i.c.campaign_id.in_(campaign_ids))
    pm, pi = per_msg.subquery("pm"), per_int.subquery("pi")
    converted = pi.c.converted_at.is_not(None)
    # Each dimension is the enrollment's (variant, trigger), the first step's channel, else the business's.
    own = {"variant": e.c.variant, "trigger_type": e.c.trigger_type, "channel": pm.c.channel}
    dims = [e.c.campaign_id, e.c.arm, *(own[d] if d in own else b.c[d] for d in DIMENSIONS)]
    query = (
        select(
            *dims,
            func.count().label("targeted"),
            func.coalesce(func.sum(pm.c.contacted), 0).label("contacted"),
            func.coalesce(func.sum(pm.c.delivered), 0).label("delivered"),
            func.coalesce(func.sum(pi.c.clicked), 0).label("clicked"),
            func.coalesce(func.sum(pi.c.responded), 0).label("responded"),
            func.sum(case((converted, 1), else_=0)).label("converted"),
            func.sum(case((and_(converted, pm.c.contacted == 1), 1), else_=0)).label("contacted_converted"),
            func.coalesce(func.sum(pi.c.opted_out), 0).label("opted_out"),
            func.coalesce(
                func.sum(
                    case((converted, _days_between(conn, pi.c.converted_at, e.c.enrolled_at)), else_=0.0)
                ),
                0.0,
            ).label("conversion_days"),
        )
        .select_from(
            e.join(b, b.c.id == e.c.business_id)
            .outerjoin(pm, pm.c.enrollment_id == e.c.id)
            .outerjoin(pi, pi.c.enrollment_id == e.c.id)
        )
        .group_by(*dims)
    )
    if campaign_ids is not None:
        query = query.where(e.c.campaign_id.in_(campaign_ids))
    return query


def _row(r: Any) -> FunnelRow:
    return FunnelRow(
        r.arm,
        **{d: getattr(r, d) for d in DIMENSIONS},
        targeted=int(r.targeted),
        contacted=int(r.contacted),
        delivered=int(r.delivered),
        clicked=int(r.clicked),
        responded=int(r.responded),
        converted=int(r.converted),
        opted_out=int(r.opted_out),
        conversion_days=float(r.conversion_days or 0.0),
        grouping=getattr(r, "grouping", None),
        contacted_converted=int(r.contacted_converted or 0),
    )


def live_rows(conn: Connection, campaign_id: int) -> list[FunnelRow]:
    """A campaign's funnel rows computed now from messages and interactions."""
    return [_row(r) for r in conn.execute(funnel_select(conn, [campaign_id]))]


def rollup_rows(conn: Connection, campaign_id: int) -> tuple[list[FunnelRow], dt.datetime | None]:
    """A campaign's funnel rows from the last rollup, and when it was made (None: never rolled up)."""
    rows = conn.execute(select(ROLLUP).where(ROLLUP.c.campaign_id == campaign_id)).all()
    if not rows:
        return [], None
    return [_row(r) for r in rows], max(r.refreshed_at for r in rows)


def refresh_rollup(
    engine: Engine, campaign_ids: list[int] | None = None, *, now: dt.datetime
) -> int:
    """Recompute the rollup of some campaigns (all when None); returns the rows written.

    The database aggregates the messages and interactions (the heavy part, one statement per campaign);
    the rollup keeps one row per breakdown value (`orchestrator.core.stats.marginals`), a few hundred rows
    per campaign however many messages it sent. Late conversion events are attributed first, so the
    nightly run also catches events whose business became known after they arrived. Then, as of the same `now`,
    the territories' global effects and these campaigns' overlap counts (the campaign page's other counts over
    millions of rows: `refresh_global_effects`, `refresh_overlap_counts`).
    """
    with engine.begin() as conn:
        attribute_conversions(conn)
    if campaign_ids is None:
        with engine.connect() as conn:
            campaign_ids = [r[0] for r in conn.execute(select(CAMPAIGNS.c.id).order_by(CAMPAIGNS.c.id))]
    written = 0
    for campaign_id in campaign_ids:
        with engine.begin() as conn:
            rows = marginals(live_rows(conn, campaign_id))
            conn.execute(delete(ROLLUP).where(ROLLUP.c.campaign_id == campaign_id))
            conn.execute(delete(ADOPTION_ROLLUP).where(ADOPTION_ROLLUP.c.campaign_id == campaign_id))
            if not rows:
                continue
            conn.execute(ADOPTION_ROLLUP.insert(),
                         _adoption_rollup_rows(campaign_id, adoption_figures(conn, campaign_id, rows),
                                               contacted_controls(conn, campaign_id), now))
            conn.execute(
                ROLLUP.insert(),
                [
                    {
                        "campaign_id": campaign_id,
                        **{c: getattr(r, c) for c in (*DIMENSION_COLUMNS, *COUNT_COLUMNS)},
                        "grouping": r.grouping,
                        "refreshed_at": now,
                    }
                    for r in rows
                ],
            )
            written += len(rows)
    with engine.begin() as conn:
        refresh_global_effects(conn, campaign_ids, now)
        refresh_overlap_counts(conn, campaign_ids, now)
    return written


def campaign_rows(
    conn: Connection, campaign_id: int, *, live: bool = False
) -> tuple[list[FunnelRow], str, str | None]:
    """(rows, "rollup" | "live", as-of ISO time): the rollup when the campaign has one, else live."""
    if not live:
        rows, at = rollup_rows(conn, campaign_id)
        if at is not None:
            return rows, "rollup", at.astimezone(dt.UTC).isoformat(timespec="seconds")
    return live_rows(conn, campaign_id), "live", None


def label_for(dimension: str, code: str | None) -> str:
    """The French name of a code of one breakdown dimension."""
    if not code:
        return ""
    if dimension == "metier_family":
        fam = families().get(code)
        return fam.label if fam else code
    if dimension == "commune_code":
        place = commune(code)
        return place.nom if place else code
    if dimension == "epci_code":
        epci = epcis().get(code)
        return epci.nom if epci else code
    if dimension == "departement_code":
        dep = departements().get(code)
        return dep.nom if dep else code
    if dimension == "trigger_type":
        return TRIGGER_LABELS.get(code, code)
    if dimension == "channel":
        return CHANNEL_LABELS.get(code, code)
    return code


# One catalogue of French labels (orchestrator/core/labels.py); the names stay for the modules that import them here.
TRIGGER_LABELS = TRIGGERS
CHANNEL_LABELS = CHANNELS


def campaign_by_name(conn: Connection, name: str):
    """The campaign row with this name, or None."""
    return conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.name == name)).first()


def campaign_by_id(conn: Connection, campaign_id: int):
    """The campaign row with this id, or None."""
    return conn.execute(select(CAMPAIGNS).where(CAMPAIGNS.c.id == campaign_id)).first()


def _adoption_base(rows: list[FunnelRow]) -> dict[str, dict[str, Any]]:
    """Adoption figures with `targeted` and `contacted` by arm from a campaign's funnel rows (live rows are fine
    rows, rolled-up ones a set per grouping: either way each enrollment counts once) and nothing adopted yet."""
    out: dict[str, dict[str, Any]] = {}
    for arm in ("treatment", "holdout"):
        _arm(out, arm)
    for r in rows:
        if r.grouping in (None, "variant"):
            arm = _arm(out, r.arm)
            arm["targeted"] += r.targeted
            arm["contacted"] += r.contacted
    return out


def _arm(out: dict[str, dict[str, Any]], arm: str) -> dict[str, Any]:
    return out.setdefault(arm, {"targeted": 0, "contacted": 0, "adopted": 0, "contacted_adopted": 0, "categories": {}})


def adoption_figures(
    conn: Connection, campaign_id: int, rows: list[FunnelRow]
) -> dict[str, dict[str, Any]]:
    """Adoption of a campaign's enrollments by arm, computed now: `targeted` and `contacted` from its funnel
    `rows`, `adopted` (enrollments with at least one `tool_adopted` attributed to them), `contacted_adopted`, and
    `categories` (code -> enrollments that adopted a tool of that category). Only the adoption events and their
    enrollments' messages are read, never all the campaign's messages (0.9 s at 444,000 of them)."""
    e, m, i = ENROLLMENTS, MESSAGES, INTERACTIONS
    handed = (
        select(m.c.id)
        .where(m.c.campaign_id == campaign_id, m.c.enrollment_id == e.c.id, m.c.status.in_(("sent", "delivered")))
        .exists()
    )
    out = _adoption_base(rows)
    adopters: dict[int, tuple[str, bool]] = {}
    pairs: set[tuple[int, str]] = set()
    for r in conn.execute(
        select(e.c.id, e.c.arm, i.c.data, handed.label("contacted"))
        .select_from(i.join(e, e.c.id == i.c.enrollment_id))
        .where(i.c.campaign_id == campaign_id, i.c.kind == ADOPTION_KIND, e.c.campaign_id == campaign_id)
    ):
        adopters[r.id] = (r.arm, bool(r.contacted))
        category = (r.data or {}).get("category") or ""
        if category in ADOPTION_CATEGORIES and (r.id, category) not in pairs:
            pairs.add((r.id, category))
            cats = _arm(out, r.arm)["categories"]
            cats[category] = cats.get(category, 0) + 1
    for arm_name, contacted in adopters.values():
        arm = _arm(out, arm_name)
        arm["adopted"] += 1
        arm["contacted_adopted"] += int(contacted)
    return out


def rollup_adoption(conn: Connection, campaign_id: int, rows: list[FunnelRow]) -> dict[str, dict[str, Any]] | None:
    """A campaign's adoption figures as of its last rollup (`targeted` and `contacted` from its rolled-up funnel
    `rows`), or None when that rollup holds no adoption (made before migration 0024)."""
    stored = conn.execute(
        select(ADOPTION_ROLLUP).where(ADOPTION_ROLLUP.c.campaign_id == campaign_id).order_by(ADOPTION_ROLLUP.c.id)
    ).all()
    if not stored:
        return None
    out = _adoption_base(rows)
    for r in stored:
        arm = _arm(out, r.arm)
        if r.category is None:
            arm.update(adopted=r.adopted, contacted_adopted=r.contacted_adopted)
        else:
            arm["categories"][r.category] = r.adopted
    return out


def _adoption_rollup_rows(
    campaign_id: int, adoption: dict[str, dict[str, Any]], control_contacted: int, now: dt.datetime
):
    """The `adoptionrollup` rows of one campaign: per arm its totals (no category; the holdout's also keeps how many
    of its controls another campaign contacted), then one per category."""
    out = []
    for arm, figures in adoption.items():
        out.append({"campaign_id": campaign_id, "arm": arm, "category": None, "adopted": figures.get("adopted", 0),
                    "contacted_adopted": figures.get("contacted_adopted", 0), "refreshed_at": now,
                    "control_contacted": control_contacted if arm == "holdout" else None})
        out += [{"campaign_id": campaign_id, "arm": arm, "category": code, "adopted": n, "contacted_adopted": 0,
                 "refreshed_at": now, "control_contacted": None}
                for code, n in sorted((figures.get("categories") or {}).items())]
    return out


def diagnostic_figures(conn: Connection, campaign_id: int) -> dict[str, dict[str, Any]]:
    """The self-diagnostics of a campaign's enrollments by arm (issue 16, point 4): how many were offered it again
    (`store.rediagnostic`), and, per enrollment, the latest readable answer given after its enrolment (a control
    business answers only the diagnostic offered after the measurement window): `asked`, `scores` (0-5),
    `appetites` (version-2 answers only: low/medium/high)."""
    e, i = ENROLLMENTS, INTERACTIONS
    latest: dict[int, tuple[Any, str, Any]] = {}
    for r in conn.execute(
        select(i.c.enrollment_id, i.c.at, i.c.data, e.c.arm, e.c.enrolled_at)
        .select_from(i.join(e, e.c.id == i.c.enrollment_id))
        .where(i.c.campaign_id == campaign_id, i.c.kind == "diagnostic_completed")
        .order_by(i.c.at, i.c.id)
    ):
        found = stored_levels(r.data)
        if found is not None and r.at >= r.enrolled_at:
            latest[r.enrollment_id] = (r.at, r.arm, found)
    out = {arm: {"asked": n, "scores": [], "appetites": []} for arm, n in asked(conn, campaign_id).items()}
    for _at, arm, found in latest.values():
        arm_out = out.setdefault(arm, {"asked": 0, "scores": [], "appetites": []})
        arm_out["scores"].append(found.score)
        if found.appetite:
            arm_out["appetites"].append(found.appetite)
    return out


def not_for_me_figures(conn: Connection, campaign_id: int) -> list[dict[str, Any]]:
    """The campaign's "Ce n'est pas pour moi" answers: one row per (reason, trade family, EPCI) with the number of
    businesses that gave that reason (a business answering twice with one reason counts once)."""
    i, b = INTERACTIONS, BUSINESS
    seen: set[tuple[Any, str]] = set()
    counts: dict[tuple[str, str, str], int] = {}
    for r in conn.execute(
        select(i.c.business_id, i.c.data, b.c.metier_family, b.c.epci_code)
        .select_from(i.outerjoin(b, b.c.id == i.c.business_id))
        .where(i.c.campaign_id == campaign_id, i.c.kind == "not_for_me")
        .order_by(i.c.id)
    ):
        reason = str((r.data or {}).get("reason") or "autre")
        if (r.business_id, reason) in seen:
            continue
        seen.add((r.business_id, reason))
        key = (reason, r.metier_family or "", r.epci_code or "")
        counts[key] = counts.get(key, 0) + 1
    return [{"reason": k[0], "metier_family": k[1], "epci_code": k[2], "businesses": n}
            for k, n in sorted(counts.items())]


def report(engine: Engine, campaign, *, live: bool = False) -> CampaignReport:
    """The report of one campaign row (the same for the dashboard and `declic report`)."""
    with engine.connect() as conn:
        rows, source, as_of = campaign_rows(conn, campaign.id, live=live)
        # Adoption as of the funnel's moment: the rollup's when the funnel is rolled up.
        rolled = source == "rollup"
        adoption = rollup_adoption(conn, campaign.id, rows) if rolled else None
        if adoption is None:  # live, or a rollup made before adoption was rolled up (migration 0024)
            adoption = adoption_figures(conn, campaign.id, rows)
        # The control group's size is the funnel's held-back enrollments (`targeted` of the holdout arm); how many
        # of them others contacted, as of the same rollup.
        overlap = overlap_figures(conn, campaign, adoption["holdout"]["targeted"],
                                  rollup_contacted_controls(conn, campaign.id) if rolled else None,
                                  rollup_global_effects(conn, campaign.id, as_of) if rolled and as_of else None)
        not_for_me = not_for_me_figures(conn, campaign.id)
        diagnostics = diagnostic_figures(conn, campaign.id)
    title = (campaign.spec or {}).get("title") or campaign.name
    return build_report(
        campaign=campaign.name,
        title=title,
        status=campaign.status,
        rows=rows,
        source=source,
        as_of=as_of,
        labels=label_for,
        overlap=overlap,
        adoption=adoption,
        not_for_me=not_for_me,
        diagnostics=diagnostics,
    )


def business_timeline(
    conn: Connection, business_id: int, campaign_ids: list[int] | None
) -> list[dict[str, Any]]:
    """Everything that happened to one business, oldest first: events, enrollments, messages and their
    history, interactions, call tasks. `campaign_ids` None shows every campaign; a list restricts the
    campaign-bound rows to those campaigns (a collectivité sees only its own)."""
    out: list[dict[str, Any]] = []

    def allowed(column):
        return column.in_(campaign_ids) if campaign_ids is not None else literal(True)

    for r in conn.execute(select(EVENTS).where(EVENTS.c.business_id == business_id)):
        out.append(
            {
                "at": r.received_at,
                "what": "événement",
                "detail": TRIGGER_LABELS.get(r.type, r.type),
                "extra": f"du {r.occurred_on:%d/%m/%Y}, source {r.source.split(':')[0]}",
            }
        )
    for r in conn.execute(
        select(ENROLLMENTS, CAMPAIGNS.c.name)
        .join(CAMPAIGNS, CAMPAIGNS.c.id == ENROLLMENTS.c.campaign_id)
        .where(ENROLLMENTS.c.business_id == business_id, allowed(ENROLLMENTS.c.campaign_id))
    ):
        arm = "groupe témoin (pas de message)" if r.arm == "holdout" else "contacté"
        out.append(
            {
                "at": r.enrolled_at,
                "what": "inscription",
                "detail": r.name,
                "extra": f"{TRIGGER_LABELS.get(r.trigger_type, r.trigger_type)}, {arm}",
            }
        )
    msgs = conn.execute(
        select(MESSAGES.c.id, MESSAGES.c.channel, MESSAGES.c.template, MESSAGES.c.step).where(
            MESSAGES.c.business_id == business_id, allowed(MESSAGES.c.campaign_id)
        )
    ).all()
    by_id = {m.id: m for m in msgs}
    if by_id:
        for h in conn.execute(select(HISTORY).where(HISTORY.c.message_id.in_(list(by_id)))):
            m = by_id[h.message_id]
            out.append(
                {
                    "at": h.at,
                    "what": "message",
                    "detail": f"{CHANNEL_LABELS.get(m.channel, m.channel)} n° {m.step + 1} ({m.template})",
                    "extra": MESSAGE_STATUS.get(h.status, h.status),
                }
            )
    for r in conn.execute(
        select(INTERACTIONS).where(
            INTERACTIONS.c.business_id == business_id, allowed(INTERACTIONS.c.campaign_id)
        )
    ):
        out.append(
            {
                "at": r.at,
                "what": "réaction",
                "detail": INTERACTION_LABELS.get(r.kind, r.kind),
                "extra": _interaction_extra(r.kind, r.data or {}),
            }
        )
    tasks = select(TASKS).where(TASKS.c.business_id == business_id)
    if campaign_ids is not None:
        tasks = tasks.where(TASKS.c.message_id.in_(list(by_id) or [-1]))
    for r in conn.execute(tasks):
        out.append(
            {
                "at": r.created_at,
                "what": "appel à passer",
                "detail": TASK_STATUS.get(r.status, r.status),
                "extra": f"{r.attempts} essai(s)",
            }
        )
    out.sort(key=lambda x: x["at"] if x["at"].tzinfo else x["at"].replace(tzinfo=dt.UTC))
    return out


MESSAGE_STATUS = MESSAGE_STATUS_LABELS  # the catalogue (orchestrator/core/labels.py)
INTERACTION_LABELS = {
    "click": "a cliqué",
    "unsubscribe": "s'est désinscrit",
    "callback_request": "demande un rappel",
    "not_for_me": "pas pour moi",
    "diagnostic_completed": "diagnostic fait",
    "offer_enrolled": "inscrit à une offre",
    "ambassador_met": "a rencontré l'ambassadeur",
    "sms_reply": "a répondu par SMS",
    "tool_adopted": "a commencé à utiliser un outil",
}
TASK_STATUS = {"open": "à faire", "done": "fait", "refused": "refusé", "no_answer": "sans réponse"}
NOT_FOR_ME = NOT_FOR_ME_LABELS  # the catalogue (orchestrator/core/labels.py): every reason of the landing page


def _interaction_extra(kind: str, data: dict[str, Any]) -> str:
    if kind == "not_for_me":
        reason = data.get("reason") or ""
        return NOT_FOR_ME.get(reason) or reason.replace("_", " ")
    if kind == "diagnostic_completed" and "score" in data:
        return f"{data['score']}/5"
    if kind == ADOPTION_KIND:

        return ADOPTION_CATEGORIES.get(data.get("category") or "", "")
    if kind == "callback_request":
        return str(data.get("slot", ""))
    return str(data.get("source", ""))


def campaign_businesses(conn: Connection, campaign_id: int, limit: int | None = 500) -> list[dict[str, Any]]:
    """The businesses enrolled in a campaign with their arm and what they did, newest first."""
    e, b, i, m = ENROLLMENTS, BUSINESS, INTERACTIONS, MESSAGES
    int_filter = [i.c.campaign_id == campaign_id]
    msg_filter = [m.c.campaign_id == campaign_id]
    if limit:
        # The page shows the latest few hundred: aggregate their rows only, not the whole campaign's.
        latest = [
            r[0]
            for r in conn.execute(
                select(e.c.id)
                .where(e.c.campaign_id == campaign_id)
                .order_by(e.c.enrolled_at.desc(), e.c.id.desc())
                .limit(limit)
            )
        ]
        int_filter.append(i.c.enrollment_id.in_(latest or [-1]))
        msg_filter.append(m.c.enrollment_id.in_(latest or [-1]))
    per_int = (
        select(
            i.c.enrollment_id,
            func.max(case((i.c.kind == "click", 1), else_=0)).label("clicked"),
            func.max(case((i.c.kind.in_(RESPONSE_KINDS), 1), else_=0)).label("responded"),
            func.max(case((i.c.kind.in_(CONVERSION_KINDS), 1), else_=0)).label("converted"),
        )
        .where(*int_filter)
        .group_by(i.c.enrollment_id)
        .subquery()
    )
    per_msg = (
        select(
            m.c.enrollment_id,
            func.count().label("messages"),
            func.max(case((m.c.status.in_(("sent", "delivered")), 1), else_=0)).label("contacted"),
        )
        .where(*msg_filter)
        .group_by(m.c.enrollment_id)
        .subquery()
    )
    query = (
        select(
            b.c.id,
            b.c.name,
            b.c.siret,
            b.c.commune_code,
            b.c.metier_family,
            e.c.arm,
            e.c.variant,
            e.c.trigger_type,
            e.c.enrolled_at,
            per_msg.c.messages,
            per_msg.c.contacted,
            per_int.c.clicked,
            per_int.c.responded,
            per_int.c.converted,
        )
        .select_from(
            e.join(b, b.c.id == e.c.business_id)
            .outerjoin(per_int, per_int.c.enrollment_id == e.c.id)
            .outerjoin(per_msg, per_msg.c.enrollment_id == e.c.id)
        )
        .where(e.c.campaign_id == campaign_id)
        .order_by(e.c.enrolled_at.desc(), e.c.id.desc())
    )
    if limit:
        query = query.limit(limit)
    out = []
    for r in conn.execute(query):
        out.append(
            {
                "id": r.id,
                "name": r.name or "",
                "siret": r.siret,
                "commune": label_for("commune_code", r.commune_code),
                "family": label_for("metier_family", r.metier_family),
                "arm": "témoin" if r.arm == "holdout" else "contacté",
                "variant": r.variant or "",
                "trigger": TRIGGER_LABELS.get(r.trigger_type, r.trigger_type),
                "enrolled_at": r.enrolled_at,
                "messages": int(r.messages or 0),
                "contacted": bool(r.contacted),
                "clicked": bool(r.clicked),
                "responded": bool(r.responded),
                "converted": bool(r.converted),
            }
        )
    return out


def find_businesses(conn: Connection, clause, text_query: str, limit: int = 50) -> list[dict[str, Any]]:
    """Businesses matching a name or SIRET start, within a scope clause (`accounts.business_clause`)."""
    wanted = text_query.strip()
    if len(wanted) < 2:
        return []
    digits = wanted.replace(" ", "")
    pattern = f"%{wanted.lower()}%"
    match = (
        BUSINESS.c.siret.startswith(digits) if digits.isdigit() else func.lower(BUSINESS.c.name).like(pattern)
    )
    rows = conn.execute(
        select(
            BUSINESS.c.id,
            BUSINESS.c.name,
            BUSINESS.c.siret,
            BUSINESS.c.commune_code,
            BUSINESS.c.metier_family,
        )
        .where(match, clause)
        .order_by(BUSINESS.c.name, BUSINESS.c.id)
        .limit(limit)
    ).all()
    return [
        {
            "id": r.id,
            "name": r.name or "",
            "siret": r.siret,
            "commune": label_for("commune_code", r.commune_code),
            "family": label_for("metier_family", r.metier_family),
        }
        for r in rows
    ]


# --- overlapping campaigns (issue 20): covered businesses, clean control groups, global effect ---


def overlap_figures(
    conn: Connection, campaign, control_n: int, control_contacted: int | None = None,
    global_effect: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """What a campaign left to others and how clean its control group is, from the store; `control_n` is its control
    group's size (the funnel's held-back enrollments, which a report already has: no second count of them), and
    `control_contacted` and `global_effect` the rollup's (None: counted now).

    `covered`: (winning campaign name, who runs it, businesses) the campaign matched but another owned the
    moment of; `global_held`: businesses kept out as part of a territory's global control group;
    `control_contacted`: its control businesses planned or sent a message by any campaign for the same
    moment (0 when the groups are clean); `global_effect`: one row per territory global control group
    touching the campaign (programme vs global control, conversion rates).
    """
    cov, winner = COVERAGE, CAMPAIGNS.alias("winner")
    covered = []
    for winner_id, name, count in conn.execute(
        select(winner.c.id, winner.c.name, func.count())
        .select_from(cov.join(winner, winner.c.id == cov.c.covered_by))
        .where(cov.c.campaign_id == campaign.id, cov.c.kind == "covered")
        .group_by(winner.c.id, winner.c.name)
        .order_by(func.count().desc(), winner.c.name)
    ):
        spec = conn.execute(select(CAMPAIGNS.c.spec).where(CAMPAIGNS.c.id == winner_id)).scalar()
        try:
            signed = CampaignSpec.model_validate(spec).signed_by()
        except ValueError:
            signed = ((spec or {}).get("owner") or {}).get("name", "")
        covered.append((name, signed, int(count)))
    global_held = conn.execute(
        select(func.count()).select_from(cov).where(cov.c.campaign_id == campaign.id, cov.c.kind == "global")
    ).scalar()
    if control_contacted is None:
        control_contacted = contacted_controls(conn, campaign.id)
    return {"covered": covered, "global_held": int(global_held or 0), "control_contacted": control_contacted,
            "control_n": control_n,
            "global_effect": global_effects(conn, campaign.id) if global_effect is None else global_effect}


def contacted_controls(conn: Connection, campaign_id: int) -> int:
    """A campaign's control businesses planned or sent a message by any campaign for the same moment, counted now:
    one look-up per held-back enrollment (0.47 s at 1 M messages), so the rollup keeps it
    (`rollup_contacted_controls`)."""
    held, other = ENROLLMENTS.alias("held"), ENROLLMENTS.alias("other")
    contacted = conn.execute(
        select(func.count(func.distinct(held.c.id)))
        .select_from(
            held.join(other, and_(other.c.business_id == held.c.business_id, other.c.moment == held.c.moment))
            .join(MESSAGES, MESSAGES.c.enrollment_id == other.c.id)
        )
        .where(held.c.campaign_id == campaign_id, held.c.arm == "holdout", MESSAGES.c.status != "cancelled")
    ).scalar()
    return int(contacted or 0)


def rollup_contacted_controls(conn: Connection, campaign_id: int) -> int | None:
    """`contacted_controls` as of the campaign's last rollup, or None when that rollup did not keep it."""
    return conn.execute(
        select(ADOPTION_ROLLUP.c.control_contacted).where(
            ADOPTION_ROLLUP.c.campaign_id == campaign_id, ADOPTION_ROLLUP.c.arm == "holdout",
            ADOPTION_ROLLUP.c.category.is_(None))
    ).scalar()


EFFECT_COLUMNS = ("programme_n", "programme_converted", "global_n", "global_converted")


def global_effects(conn: Connection, campaign_id: int | None = None) -> list[dict[str, Any]]:
    """The whole programme's effect on each territory with a global control group (touching this campaign's
    businesses when given), counted now: businesses enrolled by any campaign (treatment or holdout) against those
    kept in the territory's global control group, converted afterwards or not."""
    out = []
    for h in _holdouts(conn):
        place = place_clause(BUSINESS.c, h.level, [h.code])
        if campaign_id is None or _touches(conn, campaign_id, place):
            out.append(_territory_effect(conn, h, place))
    return out


def _holdouts(conn: Connection) -> list[Any]:
    holdouts = TerritoryHoldout.__table__
    return conn.execute(select(holdouts).where(holdouts.c.percent > 0).order_by(holdouts.c.id)).all()


def _touches(conn: Connection, campaign_id: int, place: Any) -> bool:
    """Whether the campaign enrolled or covered a business of the place (the first one found answers)."""
    return any(conn.execute(select(exists().where(
        table.c.campaign_id == campaign_id, table.c.business_id == BUSINESS.c.id, place))).scalar()
        for table in (ENROLLMENTS, COVERAGE))


def _territory_effect(conn: Connection, h: Any, place: Any) -> dict[str, Any]:
    groups = {}
    for label, table, since, extra in (
        ("programme", ENROLLMENTS, ENROLLMENTS.c.enrolled_at, ENROLLMENTS.c.arm.in_(("treatment", "holdout"))),
        ("global", COVERAGE, COVERAGE.c.at, COVERAGE.c.kind == "global"),
    ):
        first = (
            select(table.c.business_id, func.min(since).label("since"))
            .select_from(table.join(BUSINESS, BUSINESS.c.id == table.c.business_id))
            .where(place, extra)
            .group_by(table.c.business_id)
            .subquery()
        )
        converted = (
            select(func.count(func.distinct(INTERACTIONS.c.business_id)))
            .select_from(INTERACTIONS.join(first, first.c.business_id == INTERACTIONS.c.business_id))
            .where(INTERACTIONS.c.kind.in_(CONVERSION_KINDS), INTERACTIONS.c.at >= first.c.since)
        )
        groups[label] = (conn.execute(select(func.count()).select_from(first)).scalar() or 0,
                         conn.execute(converted).scalar() or 0)
    return {"level": h.level, "code": h.code, "percent": float(h.percent),
            "programme_n": int(groups["programme"][0]), "programme_converted": int(groups["programme"][1]),
            "global_n": int(groups["global"][0]), "global_converted": int(groups["global"][1])}


def refresh_global_effects(conn: Connection, campaign_ids: list[int], now: dt.datetime) -> None:
    """Store each territory's global effect as of `now` (`GlobalEffectRollup`), once for the territory and once for
    each of these campaigns touching it; the rows of other campaigns stay as their last refresh left them."""
    conn.execute(delete(GLOBAL_ROLLUP).where(or_(GLOBAL_ROLLUP.c.campaign_id.is_(None),
                                                 GLOBAL_ROLLUP.c.campaign_id.in_(campaign_ids))))
    rows = []
    for h in _holdouts(conn):
        place = place_clause(BUSINESS.c, h.level, [h.code])
        effect = _territory_effect(conn, h, place) | {"refreshed_at": now}
        rows.append(effect | {"campaign_id": None})
        rows.extend(effect | {"campaign_id": c} for c in campaign_ids if _touches(conn, c, place))
    if rows:
        conn.execute(GLOBAL_ROLLUP.insert(), rows)


def rollup_global_effects(conn: Connection, campaign_id: int | None = None, as_of: str | None = None
                          ) -> list[dict[str, Any]] | None:
    """`global_effects` as kept by the last refresh (the campaign's, made at `as_of`, an ISO time; the territories'
    alone when `campaign_id` is None), or None when no refresh since then kept any (no territory had a global
    control group then, or the rollup is older than migration 0030): the caller counts them now."""
    stored = conn.execute(select(GLOBAL_ROLLUP).where(or_(GLOBAL_ROLLUP.c.campaign_id.is_(None),
                                                          GLOBAL_ROLLUP.c.campaign_id == campaign_id))
                          .order_by(GLOBAL_ROLLUP.c.id)).all()
    since = dt.datetime.fromisoformat(as_of) if as_of else None
    if not any(r.campaign_id is None and (since is None or r.refreshed_at >= since) for r in stored):
        return None
    return [{"level": r.level, "code": r.code, "percent": float(r.percent),
             **{c: int(r._mapping[c]) for c in EFFECT_COLUMNS}} for r in stored if r.campaign_id == campaign_id]


def refresh_overlap_counts(conn: Connection, campaign_ids: list[int], now: dt.datetime) -> None:
    """Store how many businesses each of these campaigns shares with each overlapping campaign as of `now`
    (`OverlapRollup`, for both specs' versions): the campaign page reads them while neither changes."""
    conn.execute(delete(OVERLAP_ROLLUP).where(OVERLAP_ROLLUP.c.campaign_id.in_(campaign_ids)))
    rows = []
    versions = dict(conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.version)).all())
    specs = conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.spec).where(CAMPAIGNS.c.id.in_(campaign_ids))).all()
    for campaign_id, spec in specs:  # read whole first: campaign_overlaps queries the same connection
        try:
            parsed = CampaignSpec.model_validate(spec)
        except ValueError:
            continue  # a spec that no longer validates has no overlaps to show
        rows.extend({"campaign_id": campaign_id, "version": versions[campaign_id], "other_id": o["id"],
                     "other_version": versions[o["id"]], "businesses": o["businesses"], "refreshed_at": now}
                    for o in campaign_overlaps(conn, parsed, campaign_id, now.date()))
    if rows:
        conn.execute(OVERLAP_ROLLUP.insert(), rows)


def rollup_overlap_counts(conn: Connection, campaign_id: int, version: int) -> dict[tuple[int, int], int]:
    """The businesses this campaign (at `version`) shares with each overlapping campaign, by the other's (id,
    version), as the last refresh counted them (`campaign_overlaps`' `counted`)."""
    return {(r.other_id, r.other_version): r.businesses for r in conn.execute(
        select(OVERLAP_ROLLUP).where(OVERLAP_ROLLUP.c.campaign_id == campaign_id, OVERLAP_ROLLUP.c.version == version))}
