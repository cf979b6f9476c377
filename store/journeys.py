"""Ambassadors and offers: CSV import (explained rejects: line, field, reason) and the planner's views of them.

Ambassadors CSV (UTF-8, comma or semicolon separated; lists inside a cell separated by "|"):
  key,name,metier,families,naf,communes,epci,departements,channels,phone,email,commune,monthly_capacity
  `families` are métier family keys or "*" (every trade); `naf` (optional) the NAF sub-classes they practise
  ("10.71C|10.71D"): a business of one of them is matched to them before any ambassador of its mere family;
  at least one of communes/epci/departements;
  `channels` among email, phone, visit; a phone or an e-mail is required.
Offers CSV:
  key,title,provider,kind,families,territory,format,duration,hours,price,grant,url
  `kind` among diagnostic, formation_courte, accompagnement, coup_de_pouce, financement; `territory` as
  "level:code" items ("epci:243500139|departement:35"), empty for national; `format` among sur_place,
  a_distance, mixte; duration and hours are required, and a price or a grant (an owner must know what it costs in
  time and money). `price` is what the owner pays ("gratuit", "20 €"); `grant` is who pays what, as a sentence
  ("La Région rembourse la moitié de vos dépenses, jusqu'à 1 500 €"): a share of expenses in `price` is refused.
Re-importing a file updates rows by `key`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from orchestrator.core.planner import AmbassadorView, OfferView
from segments.taxonomy import families, naf_entry
from segments.territory import LEVELS, commune, communes_of, validate_codes
from store.models import Ambassador, Business, Enrollment, Offer
from store.sql import insert_for

AMBASSADORS = Ambassador.__table__
OFFERS = Offer.__table__
ENROLLMENTS = Enrollment.__table__

OFFER_KINDS = ("diagnostic", "formation_courte", "accompagnement", "coup_de_pouce", "financement")
OFFER_FORMATS = ("sur_place", "a_distance", "mixte")
AMBASSADOR_CHANNELS = ("email", "phone", "visit")
AMBASSADOR_COLUMNS = ("key", "name", "metier", "families", "naf", "communes", "epci", "departements", "channels",
                      "phone", "email", "commune", "monthly_capacity")
OFFER_COLUMNS = ("key", "title", "provider", "kind", "families", "territory", "format", "duration", "hours", "price",
                 "grant", "url")
# Columns a file may leave out (files written before they existed still import).
OPTIONAL_COLUMNS = ("url", "metier", "commune", "naf", "grant")
# A price that is really a grant: a share of the expenses, a ceiling ("50 % des dépenses jusqu'à 1 500 €").
_GRANT_IN_PRICE = re.compile(r"%|\bdépenses\b|\bjusqu'à\b|\brembours|\bprise en charge\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Reject:
    """A CSV line left out: its number (the header is line 1), the field at fault and why, in French."""
    line: int
    field: str
    reason: str


def _items(cell: str | None) -> list[str]:
    return [x.strip() for x in (cell or "").split("|") if x.strip()]


def _read(text: str, expected: tuple[str, ...]) -> tuple[list[tuple[int, dict[str, str]]], list[Reject]]:
    sample = text[:2048]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in expected if c not in header and c not in OPTIONAL_COLUMNS]
    unknown = [h for h in header if h not in expected]
    if missing or unknown:
        reason = "; ".join(filter(None, [f"colonnes manquantes: {', '.join(missing)}" if missing else "",
                                         f"colonnes inconnues: {', '.join(unknown)}" if unknown else ""]))
        return [], [Reject(1, "en-tête", reason)]
    rows = []
    for number, row in enumerate(reader, start=2):
        rows.append((number, {k.strip(): (v or "").strip() for k, v in row.items() if k}))
    return rows, []


def _check_key(row: dict[str, str], seen: set[str], bad: Callable[[str, str], None]) -> None:
    """A registry row's `key`: given, and not already met earlier in the same file."""
    if not row.get("key"):
        bad("key", "identifiant manquant")
    elif row["key"] in seen:
        bad("key", f"identifiant en double: {row['key']}")


RowCheck = Callable[[dict[str, str], Callable[[str, str], None]], dict[str, Any]]


def _checked_rows(rows: list[tuple[int, dict[str, str]]], check: RowCheck) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Registry rows through `check(row, bad)`, which notes each fault with `bad(field, reason)` and returns the
    row to store; the key is checked first (given, not met earlier in the file). Returns the rows of the lines
    without a fault and the rejects of the others."""
    out: list[dict[str, Any]] = []
    rejects: list[Reject] = []
    seen: set[str] = set()
    for line, r in rows:
        errors: list[Reject] = []

        def bad(fld: str, reason: str, line=line, errors=errors) -> None:
            errors.append(Reject(line, fld, reason))

        _check_key(r, seen, bad)
        checked = check(r, bad)
        if errors:
            rejects += errors
            continue
        seen.add(r["key"])
        out.append(checked)
    return out, rejects


def _territory(cell: str | None, bad: Callable[[str, str], None]) -> list[str]:
    """A `territory` cell's "level:code" items ("epci:243500139|departement:35"); a bad item is a fault."""
    items = _items(cell)
    for item in items:
        level, _, code = item.partition(":")
        if level not in LEVELS or not code:
            bad("territory", f"territoire illisible: {item!r} (exemple: epci:243500139)")
        elif validate_codes(level, [code]):
            bad("territory", f"code inconnu: {item}")
    return items


def parse_ambassadors(text: str) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Validated ambassador rows and the lines rejected."""
    def check(r: dict[str, str], bad: Callable[[str, str], None]) -> dict[str, Any]:
        if not r.get("name"):
            bad("name", "nom manquant")
        fams = _items(r.get("families"))
        if not fams:
            bad("families", "aucune famille de métiers (mettre * pour tous les métiers)")
        elif unknown := [f for f in fams if f != "*" and f not in families()]:
            bad("families", f"familles inconnues: {', '.join(unknown)}")
        nafs = []
        for code in _items(r.get("naf")):
            entry = naf_entry(code)
            if entry is None:
                bad("naf", f"code NAF inconnu: {code!r} (exemple: 10.71C)")
            elif fams and "*" not in fams and entry.family not in fams:
                bad("naf", f"le code NAF {entry.code} n'est pas de la famille {', '.join(fams)}")
            else:
                nafs.append(entry.code)
        places = {"communes": _items(r.get("communes")), "epci": _items(r.get("epci")),
                  "departements": _items(r.get("departements"))}
        if not any(places.values()):
            bad("communes", "aucun territoire servi (communes, epci ou departements)")
        for fld, level in (("communes", "commune"), ("epci", "epci"), ("departements", "departement")):
            if unknown := validate_codes(level, places[fld]):
                bad(fld, f"codes inconnus: {', '.join(unknown)}")
        channels = _items(r.get("channels")) or ["email", "phone"]
        if unknown := [c for c in channels if c not in AMBASSADOR_CHANNELS]:
            bad("channels", f"canaux inconnus: {', '.join(unknown)} (connus: {', '.join(AMBASSADOR_CHANNELS)})")
        if not (r.get("phone") or r.get("email")):
            bad("phone", "ni téléphone ni e-mail: le dirigeant ne pourrait pas le joindre")
        try:
            capacity = int(r.get("monthly_capacity") or "10")
            if capacity < 0:
                raise ValueError
        except ValueError:
            bad("monthly_capacity", f"capacité mensuelle illisible: {r.get('monthly_capacity')!r}")
            capacity = 0
        return {"key": r["key"], "name": r["name"], "metier": r.get("metier") or None, "families": fams,
                "nafs": nafs, "communes": places["communes"], "epcis": places["epci"],
                "departements": places["departements"], "channels": channels, "phone": r.get("phone") or None,
                "email": r.get("email") or None, "commune": r.get("commune") or None,
                "monthly_capacity": capacity, "active": True}

    rows, rejects = _read(text, AMBASSADOR_COLUMNS)
    out, faults = _checked_rows(rows, check)
    return out, rejects + faults


def parse_offers(text: str) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Validated offer rows and the lines rejected."""
    def check(r: dict[str, str], bad: Callable[[str, str], None]) -> dict[str, Any]:
        for fld in ("title", "provider", "duration", "hours"):
            if not r.get(fld):
                bad(fld, "valeur manquante")
        if not (r.get("price") or r.get("grant")):
            bad("price", "ni prix ni aide: le dirigeant doit savoir ce que cela lui coûte")
        elif r.get("price") and _GRANT_IN_PRICE.search(r["price"]):
            bad("price", f"{r['price']!r} est une aide, pas un prix: écrivez-la en phrase dans la colonne grant "
                         "(ex. « La Région rembourse la moitié de vos dépenses, jusqu'à 1 500 € »)")
        if r.get("kind") not in OFFER_KINDS:
            bad("kind", f"type d'offre inconnu: {r.get('kind')!r} (connus: {', '.join(OFFER_KINDS)})")
        if r.get("format") not in OFFER_FORMATS:
            bad("format", f"format inconnu: {r.get('format')!r} (connus: {', '.join(OFFER_FORMATS)})")
        fams = _items(r.get("families"))
        if unknown := [f for f in fams if f != "*" and f not in families()]:
            bad("families", f"familles inconnues: {', '.join(unknown)}")
        territory = _territory(r.get("territory"), bad)
        return {"key": r["key"], "title": r["title"], "provider": r["provider"], "kind": r["kind"],
                "families": fams, "territory": territory, "format": r["format"], "duration": r["duration"],
                "hours": r["hours"], "price": r.get("price") or None, "grant": r.get("grant") or None,
                "url": r.get("url") or None, "active": True}

    rows, rejects = _read(text, OFFER_COLUMNS)
    out, faults = _checked_rows(rows, check)
    return out, rejects + faults


def _upsert(engine: Engine, table, rows: list[dict[str, Any]], now: dt.datetime) -> int:
    if not rows:
        return 0
    with engine.begin() as conn:
        stmt = insert_for(conn, table)
        columns = [c for c in rows[0] if c != "key"] + ["updated_at"]
        stmt = stmt.on_conflict_do_update(index_elements=["key"],
                                          set_={c: getattr(stmt.excluded, c) for c in columns})
        conn.execute(stmt, [dict(r, created_at=now, updated_at=now) for r in rows])
    return len(rows)


def import_ambassadors(engine: Engine, source: str | Path, *, now: dt.datetime) -> tuple[int, list[Reject]]:
    """Import (create or update by key, at `now`) ambassadors from a CSV file or text; returns (imported, rejects)."""
    text = source if isinstance(source, str) and "\n" in source else Path(source).read_text(encoding="utf-8")
    rows, rejects = parse_ambassadors(text)
    return _upsert(engine, AMBASSADORS, rows, now), rejects


def import_offers(engine: Engine, source: str | Path, *, now: dt.datetime) -> tuple[int, list[Reject]]:
    """Import (create or update by key, at `now`) offers from a CSV file or text; returns (imported, rejects)."""
    text = source if isinstance(source, str) and "\n" in source else Path(source).read_text(encoding="utf-8")
    rows, rejects = parse_offers(text)
    return _upsert(engine, OFFERS, rows, now), rejects


REGISTRY_TABLES = {"ambassadors": AMBASSADORS, "offers": OFFERS}


def registry_rows(conn: Connection, kind: str) -> list:
    """Every row of the registry `kind` ("ambassadors" or "offers"), active or not, by key."""
    table = REGISTRY_TABLES[kind]
    return conn.execute(select(table).order_by(table.c.key)).all()


def month_start(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The first instant of `now`'s calendar month in `zone`, the deployment's (capacities are monthly)."""
    local = now.astimezone(zone)
    return dt.datetime(local.year, local.month, 1, tzinfo=zone).astimezone(dt.UTC)


# Registry rows change rarely (an import); planning reads them every batch. Cached with the table's
# (row count, last update, last id) so a new import is seen on the next batch.
_REGISTRY_CACHE: dict[str, tuple[tuple, list]] = {}
# The ambassadors' views last made, by id: a batch makes a new one only for those whose capacity left changed (a
# scheduled occurrence's 89 batches made 3,000 each, 3.5 us a copy: 1 s).
_AMBASSADOR_VIEWS: dict[int, AmbassadorView] = {}


def _registry_key(conn: Connection, table) -> tuple:
    return tuple(conn.execute(select(func.count(), func.max(table.c.updated_at), func.max(table.c.id))
                              .where(table.c.active.is_(True))).one())


def ambassador_views(conn: Connection, now: dt.datetime, zone: ZoneInfo) -> list[AmbassadorView]:
    """Active ambassadors with what is left of their capacity this month (the month of `now` in `zone`)."""
    key = (str(conn.engine.url),) + _registry_key(conn, AMBASSADORS)
    cached = _REGISTRY_CACHE.get("ambassadors")
    if cached is None or cached[0] != key:
        static = []
        for a in conn.execute(select(AMBASSADORS).where(AMBASSADORS.c.active.is_(True)).order_by(AMBASSADORS.c.id)):
            communes, deps = _served(tuple(a.communes), tuple(a.epcis), tuple(a.departements))
            static.append((AmbassadorView(
                id=a.id, name=a.name, metier=a.metier, phone=a.phone, email=a.email, commune=a.commune,
                families=frozenset(a.families), communes=communes, epcis=frozenset(a.epcis),
                departements=deps, remaining=0, nafs=frozenset(a.nafs or ())), a.monthly_capacity))
        cached = _REGISTRY_CACHE["ambassadors"] = (key, static)
        _AMBASSADOR_VIEWS.clear()
    used = dict(conn.execute(
        select(ENROLLMENTS.c.ambassador_id, func.count())
        .where(ENROLLMENTS.c.ambassador_id.is_not(None), ENROLLMENTS.c.enrolled_at >= month_start(now, zone))
        .group_by(ENROLLMENTS.c.ambassador_id)).all())
    views, made = [], _AMBASSADOR_VIEWS
    for view, capacity in cached[1]:
        remaining = max(capacity - used.get(view.id, 0), 0)
        last = made.get(view.id)
        if last is None or last.remaining != remaining:
            last = made[view.id] = replace(view, remaining=remaining)
        views.append(last)
    return views


@lru_cache(maxsize=65536)
def _served(communes: tuple[str, ...], epcis: tuple[str, ...], departements: tuple[str, ...]
            ) -> tuple[frozenset[str], frozenset[str]]:
    """The commune codes (with arrondissements) and départements an ambassador serves; cached, as the
    territory reference never changes while the engine runs."""
    deps = set(departements)
    deps |= {info.departement for info in map(commune, communes) if info}
    for epci in epcis:
        deps |= {info.departement for info in map(commune, communes_of("epci", epci)) if info}
    served: set[str] = set()
    for code in communes:
        served |= communes_of("commune", code, with_subdivisions=True)
    return frozenset(served), frozenset(deps)


def offer_views(conn: Connection) -> list[OfferView]:
    """Active offers with the trades and places they fit."""
    key = (str(conn.engine.url),) + _registry_key(conn, OFFERS)
    cached = _REGISTRY_CACHE.get("offers")
    if cached is not None and cached[0] == key:
        return list(cached[1])
    out = []
    for o in conn.execute(select(OFFERS).where(OFFERS.c.active.is_(True)).order_by(OFFERS.c.id)):
        places: dict[str, set[str]] = {"commune": set(), "epci": set(), "departement": set(), "region": set()}
        for item in o.territory:
            level, _, code = item.partition(":")
            places.setdefault(level, set()).add(code)
        out.append(OfferView(
            id=o.id, title=o.title, provider=o.provider, kind=o.kind, format=o.format, duration=o.duration,
            hours=o.hours, price=o.price, families=frozenset(o.families), communes=frozenset(places["commune"]),
            epcis=frozenset(places["epci"]), departements=frozenset(places["departement"]),
            regions=frozenset(places["region"]), grant=o.grant))
    _REGISTRY_CACHE["offers"] = (key, out)
    return list(out)


def ambassador_gaps(conn: Connection, campaign_id: int | None = None) -> list[tuple]:
    """Where no ambassador fitted (the campaign's contact stood in): (campaign id, métier family, département,
    enrollments), most first, for the dashboard."""
    business = Business.__table__
    query = (select(ENROLLMENTS.c.campaign_id, business.c.metier_family, business.c.departement_code, func.count())
             .select_from(ENROLLMENTS.join(business, business.c.id == ENROLLMENTS.c.business_id))
             .where(ENROLLMENTS.c.arm == "treatment", ENROLLMENTS.c.ambassador_id.is_(None))
             .group_by(ENROLLMENTS.c.campaign_id, business.c.metier_family, business.c.departement_code)
             .order_by(func.count().desc()))
    if campaign_id is not None:
        query = query.where(ENROLLMENTS.c.campaign_id == campaign_id)
    return conn.execute(query).all()


def ambassador_name(conn: Connection, ambassador_id: int) -> str | None:
    """The ambassador's name, or None when there is no such ambassador."""
    return conn.execute(select(AMBASSADORS.c.name).where(AMBASSADORS.c.id == ambassador_id)).scalar()
