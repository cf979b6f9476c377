"""The territory barometer (issue 16, point 6): the share of businesses at each digital maturity level, by trade
family, EPCI, commune (where samples allow) and quarter, each share with its sample size and a 95 % Wilson
interval, a group hidden below a minimum count. Pure: answers in, tables out; the dashboard page, its CSV and
`declic barometre` print the same tables.

A business counts once per group: its latest self-diagnostic (the score of the five questions, 0 to 5), or the
maturity stored on the business when it never answered one here. By quarter, a business counts once in each
quarter it answered, with its latest answer of that quarter.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.core.stats import Table, wilson

# Stable codes, French labels (the landing page's diagnostic names the same three steps).
MATURITY_LEVELS = {"first_steps": "premiers pas", "on_the_way": "en route", "well_equipped": "bien équipé"}
# The appetite of the owner (time they can give, what they want to stop doing by hand), asked since version 2 of
# the self-diagnostic (orchestrator.core.diagnostic): older answers have none.
APPETITE_LEVELS = {"low": "pas pour l'instant", "medium": "envie d'essayer", "high": "envie d'avancer"}
MIN_COUNT = 10
TOO_FEW = "effectif trop faible"
DIMENSIONS = {  # table key -> (attribute of an answer, French header)
    "par_metier": ("metier_family", "Famille de métiers"),
    "par_epci": ("epci_code", "EPCI"),
    "par_commune": ("commune_code", "Commune"),
}


def maturity_level(score: int) -> str:
    """The level of a diagnostic score: 0-1 first steps, 2-3 on the way, 4-5 well equipped."""
    if score <= 1:
        return "first_steps"
    return "on_the_way" if score <= 3 else "well_equipped"


def quarter_of(day: dt.date) -> str:
    """2026-11-05 -> "2026-T4" (sorts in time order)."""
    return f"{day.year}-T{(day.month - 1) // 3 + 1}"


def quarter_label(key: str) -> str:
    """ "2026-T4" -> "4e trimestre 2026"; the first one is "1er trimestre"."""
    year, q = key.split("-T")
    return f"{q}{'er' if q == '1' else 'e'} trimestre {year}"


@dataclass(frozen=True, slots=True)
class Answer:
    """One known maturity of a business: a diagnostic score with its day, or the stored maturity (day None)."""

    business_id: int
    score: int
    day: dt.date | None
    metier_family: str | None
    epci_code: str | None
    commune_code: str | None
    appetite: str | None = None  # low | medium | high (diagnostics of version 2), else None


@dataclass(slots=True)
class Barometer:
    """The barometer of one territory."""

    territory: str  # as asked, e.g. "departement:35"
    territory_label: str
    businesses: int  # businesses of the territory in the store
    answered: int  # of which with a known maturity
    min_count: int
    tables: list[Table] = field(default_factory=list)
    # The whole programme against the global control group of the territories with one (issue 20), if any.
    global_effect: Table | None = None

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


def _columns(group_header: str, scale: dict[str, str] = MATURITY_LEVELS) -> tuple[list[tuple[str, str]],
                                                                                   dict[str, str]]:
    columns = [("group", group_header), ("n", "Effectif")]
    kinds = {"group": "text", "n": "int", "note": "text"}
    for code, label in scale.items():
        name = label.capitalize()
        columns += [(f"{code}_share", f"{name} : part"), (f"{code}_lower", f"{name} : borne basse"),
                    (f"{code}_upper", f"{name} : borne haute")]
        kinds.update({f"{code}_share": "pct", f"{code}_lower": "pct", f"{code}_upper": "pct"})
    columns.append(("note", "Remarque"))
    return columns, kinds


def _row(label: str, levels: list[str], min_count: int, scale: dict[str, str] = MATURITY_LEVELS) -> dict[str, Any]:
    n = len(levels)
    row: dict[str, Any] = {"group": label, "n": None, "note": ""}
    if n < min_count:
        row["note"] = f"{TOO_FEW} (moins de {min_count})"
        return row
    row["n"] = n
    for code in scale:
        k = sum(1 for x in levels if x == code)
        lo, hi = wilson(k, n)
        row.update({f"{code}_share": k / n, f"{code}_lower": lo, f"{code}_upper": hi})
    return row


def _table(key: str, title: str, header: str, groups: dict[str, list[str]], label: Callable[[str], str],
           min_count: int, *, hide_small: bool = False, order: str = "size",
           scale: dict[str, str] = MATURITY_LEVELS) -> Table:
    columns, kinds = _columns(header, scale)
    table = Table(key, title, columns, kinds=kinds)
    if order == "size":
        keys = sorted(groups, key=lambda k: (-len(groups[k]), label(k)))
    else:
        keys = sorted(groups)
    hidden = 0
    for k in keys:
        if hide_small and len(groups[k]) < min_count:
            hidden += 1
            continue
        table.rows.append(_row(label(k), groups[k], min_count, scale))
    if hidden:
        table.rows.append({"group": f"{hidden} autre(s) commune(s)", "n": None,
                           "note": f"{TOO_FEW} (moins de {min_count} chacune)"})
    return table


def build_barometer(
    answers: Iterable[Answer],
    *,
    territory: str,
    territory_label: str,
    businesses: int,
    labels: Callable[[str, str | None], str],
    min_count: int = MIN_COUNT,
) -> Barometer:
    """The barometer's tables from every known maturity of the territory's businesses."""
    answers = list(answers)
    latest: dict[int, Answer] = {}
    for a in answers:
        known = latest.get(a.business_id)  # a dated answer beats the undated stored maturity; then the latest
        if known is None or (a.day is not None and (known.day is None or a.day >= known.day)):
            latest[a.business_id] = a
    current = list(latest.values())
    out = Barometer(territory, territory_label, businesses, len(current), min_count)
    out.tables.append(_table("ensemble", f"Ensemble : {territory_label}", "Territoire",
                             {territory_label: [maturity_level(a.score) for a in current]} if current else {},
                             lambda k: k, min_count))
    for key, (attr, header) in DIMENSIONS.items():
        groups: dict[str, list[str]] = {}
        for a in current:
            groups.setdefault(getattr(a, attr) or "", []).append(maturity_level(a.score))
        out.tables.append(_table(
            key, f"Par {header if header.isupper() else header.lower()}", header, groups,
            _named(labels, attr), min_count, hide_small=attr == "commune_code"))
    per_quarter: dict[tuple[int, str], Answer] = {}
    for a in answers:
        if a.day is None:
            continue
        slot = (a.business_id, quarter_of(a.day))
        if slot not in per_quarter or _day(per_quarter[slot]) <= a.day:
            per_quarter[slot] = a
    quarters: dict[str, list[str]] = {}
    for (_, q), a in per_quarter.items():
        quarters.setdefault(q, []).append(maturity_level(a.score))
    out.tables.append(_table("par_trimestre", "Évolution par trimestre (diagnostics du trimestre)", "Trimestre",
                             quarters, quarter_label, min_count, order="time"))
    # Appetite: the latest answer that asked it, for the whole territory, by trade family and by EPCI.
    wished: dict[int, tuple[Answer, str]] = {}  # the answer and its appetite
    for a in answers:
        if a.appetite is not None and (a.business_id not in wished or _day(wished[a.business_id][0]) <= _day(a)):
            wished[a.business_id] = (a, a.appetite)
    keen = list(wished.values())
    if not keen:  # no answer asked it yet (older diagnostics): no empty tables
        return out
    out.tables.append(_table("envie_ensemble", f"Envie d'avancer : {territory_label}", "Territoire",
                             {territory_label: [appetite for _, appetite in keen]} if keen else {}, lambda k: k,
                             min_count, scale=APPETITE_LEVELS))
    for key, attr, header in (("envie_par_metier", "metier_family", "Famille de métiers"),
                              ("envie_par_epci", "epci_code", "EPCI")):
        groups = {}
        for a, appetite in keen:
            groups.setdefault(getattr(a, attr) or "", []).append(appetite)
        out.tables.append(_table(
            key, f"Envie d'avancer, par {header if header.isupper() else header.lower()}", header, groups,
            _named(labels, attr), min_count, scale=APPETITE_LEVELS))
    return out


def _day(a: Answer) -> dt.date:
    """The day of an answer, for choosing the latest (a stored maturity, without a day, comes first)."""
    return a.day or dt.date.min


def _named(labels: Callable[[str, str | None], str], dimension: str) -> Callable[[str], str]:
    """A breakdown's row names: the code's name in `dimension` (else the code), "(inconnu)" without a code."""
    return lambda code: (labels(dimension, code) or code) if code else "(inconnu)"


def barometer_dict(b: Barometer) -> dict[str, Any]:
    """The barometer as plain JSON-ready values (what `declic barometre --json` prints)."""
    return {
        "territory": b.territory,
        "territory_label": b.territory_label,
        "businesses": b.businesses,
        "answered": b.answered,
        "min_count": b.min_count,
        "levels": MATURITY_LEVELS,
        "tables": {t.key: {"title": t.title, "columns": [k for k, _ in t.columns], "rows": t.rows}
                   for t in b.tables},
        "global_effect": b.global_effect.rows if b.global_effect is not None else [],
    }


def _csv_value(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if kind == "pct":
        return f"{value * 100:.1f}".replace(".", ",")
    return str(value)


def barometer_csv(b: Barometer) -> str:
    """Every table in one French CSV: `;`, French headers, decimal commas, shares in percent (UTF-8; the
    web answer adds the byte-order mark)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\n")
    header_of = None
    for t in b.tables:
        columns = [k for k, _ in t.columns[1:]]
        if columns != header_of:  # a new scale (maturity, then appetite): its header line first
            header_of = columns
            headers = [h + (" (%)" if t.kinds.get(k) == "pct" else "") for k, h in t.columns]
            writer.writerow(["Rubrique", "Groupe", *headers[1:]])
        for row in t.rows:
            writer.writerow([t.title, *(_csv_value(row.get(k), t.kinds.get(k, "text")) for k, _ in t.columns)])
    return out.getvalue()
