"""What the territory barometer reads: the self-diagnostic answers stored as interactions (`diagnostic_completed`
with a score) and the maturity stored on the businesses, within one territory. The maths is in
`orchestrator.core.barometer`."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from orchestrator.core.barometer import MIN_COUNT, Answer, Barometer, build_barometer
from orchestrator.core.diagnostic import stored_levels
from orchestrator.core.stats import overlap_tables
from segments.territory import commune, departements, epcis, regions
from store.accounts import territory_contains
from store.models import Business, Interaction
from store.report import global_effects, label_for, rollup_global_effects
from store.segment_sql import territory_clause

BUSINESS = Business.__table__
INTERACTIONS = Interaction.__table__


def territory_label(territory: dict[str, list[str]]) -> str:
    """The French names of a territory's places ("Ille-et-Vilaine", "Rennes Métropole, Vitré"...)."""
    names = []
    for key, codes in territory.items():
        for code in codes:
            place = {"communes": commune(code), "epci": epcis().get(code), "departements": departements().get(code),
                     "regions": regions().get(code)}.get(key)
            names.append(getattr(place, "nom", None) or code)
    return ", ".join(names)


def barometer_answers(conn: Connection, territory: dict[str, list[str]]) -> list[Answer]:
    """Every known maturity of the territory's businesses: each scored self-diagnostic, and the stored maturity
    (undated) of every business that has one."""
    inside = territory_clause(BUSINESS.c, territory)
    out: list[Answer] = []
    for r in conn.execute(
        select(INTERACTIONS.c.business_id, INTERACTIONS.c.at, INTERACTIONS.c.data, BUSINESS.c.metier_family,
               BUSINESS.c.epci_code, BUSINESS.c.commune_code)
        .select_from(INTERACTIONS.join(BUSINESS, BUSINESS.c.id == INTERACTIONS.c.business_id))
        .where(INTERACTIONS.c.kind == "diagnostic_completed", inside)
    ):
        found = stored_levels(r.data)  # either version of the self-diagnostic; a partner's event has none
        if found is not None:
            at = r.at if r.at.tzinfo else r.at.replace(tzinfo=dt.UTC)
            out.append(Answer(r.business_id, found.score, at.date(), r.metier_family, r.epci_code, r.commune_code,
                              found.appetite))
    for r in conn.execute(
        select(BUSINESS.c.id, BUSINESS.c.digital_maturity, BUSINESS.c.metier_family, BUSINESS.c.epci_code,
               BUSINESS.c.commune_code)
        .where(BUSINESS.c.digital_maturity.is_not(None), inside)
    ):
        if 0 <= r.digital_maturity <= 5:
            out.append(Answer(r.id, int(r.digital_maturity), None, r.metier_family, r.epci_code, r.commune_code))
    return out


def barometer(engine: Engine, territory: dict[str, list[str]], text: str, *, min_count: int = MIN_COUNT) -> Barometer:
    """The barometer of a territory (the same for the dashboard page, its CSV and `declic barometre`)."""
    with engine.connect() as conn:
        answers = barometer_answers(conn, territory)
        businesses = conn.execute(
            select(func.count()).select_from(BUSINESS).where(territory_clause(BUSINESS.c, territory))
        ).scalar_one()
        effects = global_effects_around(conn, territory)
    result = build_barometer(answers, territory=text, territory_label=territory_label(territory),
                             businesses=int(businesses), labels=label_for, min_count=min_count)
    if effects:
        result.global_effect = overlap_tables({"global_effect": effects})[2]
    return result


def global_effects_around(conn: Connection, territory: dict[str, list[str]]) -> list[dict]:
    """The global effects (`store.report.global_effects`) of the territories with a global control group that lie
    inside this territory or hold it: what the programme changed there, against businesses no campaign contacted."""
    rolled = rollup_global_effects(conn)  # as of the last refresh; counted now before the first one
    out = []
    for g in global_effects(conn) if rolled is None else rolled:
        place = {g["level"]: [g["code"]]}
        if territory_contains(territory, place) or territory_contains(place, territory):
            out.append(g)
    return out
