"""A segment (`segments.language`) compiled to one SQL WHERE clause over the store's tables.

The language itself (fields, validation, head-count bands, reachability bits) is pure and lives in segments/; this
is its translation to a SQLAlchemy Core boolean expression. It never runs a query: the callers (planning, the
segment preview, the benchmarks) put the expression in their own statements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, func, not_, or_, select, true
from sqlalchemy.types import Boolean

from segments.language import (
    CONVERSION_KINDS,
    REACH_BITS,
    Segment,
    TerritoryFilter,
    legal_form_prefixes,
    parse_age,
    tranche_codes,
)
from segments.territory import Level, communes_of, departements_of
from store.models import Business

# The tables a segment reads by default: the store's own.
STORE_TABLES = {name: Business.metadata.tables[name] for name in ("business", "triggerevent", "interaction")}


def place_clause(b: Any, level: Level, codes: Iterable[str]) -> ColumnElement[bool]:
    """The businesses (columns `b` of the business table) in any of these places of one level, through an index.

    Why: `business` has no index of its own on its EPCI or région (migration 0029: every business written paid a
    random insert into each, and a first load a sort of each); an EPCI is found by its communes and a région by
    its départements, which are indexed, and the stored code is still compared, so the answer is the same.
    Communes match their arrondissements and former communes too, as Sirene may carry them (75101...).
    """
    codes = sorted(set(codes))
    if level == "departement":
        return b.departement_code.in_(codes)
    if level == "region":
        deps = sorted({dep for code in codes for dep in departements_of(code)})
        return and_(b.departement_code.in_(deps), b.region_code.in_(codes))
    communes = sorted({c for code in codes for c in communes_of(level, code, with_subdivisions=True)})
    if level == "commune":
        return b.commune_code.in_(communes)
    return and_(b.commune_code.in_(communes), b.epci_code.in_(codes))


# The keys of a territory mapping (`TerritoryFilter`, a collectivité's scope) and the level each names.
TERRITORY_KEYS: dict[str, Level] = {"communes": "commune", "epci": "epci", "departements": "departement",
                                    "regions": "region"}


def territory_clause(b: Any, territory: Mapping[str, Iterable[str]]) -> ColumnElement[bool]:
    """The businesses in any of the places of a territory mapping ({"communes": [...], "epci": [...]...}); false
    for an empty one."""
    parts = [place_clause(b, level, territory[key]) for key, level in TERRITORY_KEYS.items() if territory.get(key)]
    return or_(*parts) if parts else false()


def compile_segment(seg: Segment, *, today: dt.date, tables: dict[str, Any] | None = None,
                    territory: TerritoryFilter | None = None) -> ColumnElement[bool]:
    """The segment as a SQLAlchemy Core boolean expression over the business table.

    `territory` replaces the segment's own territory (the campaign's effective territory); `tables` maps
    "business", "triggerevent" and "interaction" to Table objects (the store's by default).
    """
    if tables is None:
        tables = STORE_TABLES
    b = tables["business"].c
    clauses = []
    if seg.families:
        clauses.append(b.metier_family.in_(seg.families))
    if seg.naf:
        clauses.append(or_(*[b.naf_code.like(f"{p}%") for p in seg.naf]))
    terr = territory if territory is not None else seg.territory
    if not terr.is_empty():
        clauses.append(territory_clause(b, terr.model_dump()))
    if seg.headcount:
        codes, with_unknown = tranche_codes(seg.headcount)
        parts = [b.tranche_effectifs.in_(codes)] if codes else []
        if with_unknown:
            parts.append(b.tranche_effectifs.is_(None))
        clauses.append(or_(*parts))
    if seg.legal_forms:
        # INSEE's codes nest by prefix: "57" is every SAS (5710, 5720...), "5" every société commerciale.
        prefixes, with_unknown = legal_form_prefixes(seg.legal_forms)
        parts = [b.categorie_juridique.like(f"{p}%") for p in prefixes]
        if with_unknown:
            parts.append(b.categorie_juridique.is_(None))
        clauses.append(or_(*parts))
    if seg.stages:
        clauses.append(b.lifecycle_stage.in_(seg.stages))
    if seg.triggers is not None:
        ev = tables["triggerevent"].c
        cond = [ev.business_id == b.id, ev.type.in_(seg.triggers.types), ev.status == "accepted"]
        if seg.triggers.within is not None:
            cond.append(ev.occurred_on >= today - parse_age(seg.triggers.within))
        clauses.append(exists(select(ev.id).where(*cond)))
    if seg.age is not None:
        if seg.age.min is not None:
            clauses.append(b.creation_date <= today - parse_age(seg.age.min))
        if seg.age.max is not None:
            clauses.append(b.creation_date >= today - parse_age(seg.age.max))
    if seg.reachable:
        if "reach" in b:  # the stored bits: the segment index carries them (no table scan for a national count)
            mask = sum(REACH_BITS[r] for r in seg.reachable)
            clauses.append(b.reach.in_([v for v in range(1, sum(REACH_BITS.values()) + 1) if v & mask]))
        else:
            column = {"email": b.email.is_not(None), "phone": b.phone.is_not(None),
                      "postal": and_(b.street.is_not(None), b.postal_code.is_not(None), b.city.is_not(None))}
            clauses.append(or_(*[column[r] for r in seg.reachable]))
    if seg.converted is not None:
        it = tables["interaction"].c
        converted = exists(select(it.id).where(it.business_id == b.id, it.kind.in_(CONVERSION_KINDS)))
        clauses.append(converted if seg.converted else not_(converted))
    if seg.digital_maturity is not None:
        m = seg.digital_maturity
        known = [b.digital_maturity.is_not(None)]
        if m.min is not None:
            known.append(b.digital_maturity >= m.min)
        if m.max is not None:
            known.append(b.digital_maturity <= m.max)
        clauses.append(or_(and_(*known), b.digital_maturity.is_(None)) if m.unknown else and_(*known))
    if seg.exclude is not None:
        inner = compile_segment(seg.exclude, today=today, tables=tables)
        # NULL-safe negation: a business the excluded segment cannot decide on (NULL column) stays in.
        clauses.append(not_(func_coalesce(inner, false())))
    return and_(true(), *clauses)


def func_coalesce(expr: ColumnElement[bool], default: ColumnElement[bool]) -> ColumnElement[bool]:
    """COALESCE for a boolean expression (NOT over NULL would drop the row)."""
    return func.coalesce(expr, default, type_=Boolean)
