"""Campaign metrics: funnel, conversion rates with Wilson intervals, uplift against the control group
with Newcombe's interval, A/B comparison of variants, breakdowns. Pure: rows in, values out.

The store gives funnel rows already grouped by arm, variant, trigger, métier family, commune, EPCI,
département and channel (`store.report`); everything here is arithmetic on those rows, so the
dashboard and `declic report` print the same figures from the same `Table`s.

Counting unit: an enrollment (one business entering the campaign for one trigger). A stage counts the
enrollments that reached it at least once; stages are not forced to nest (a partner may report a
conversion of a business that never clicked).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any

from orchestrator.core.labels import label as fr_label
from triggers.model import ADOPTION_CATEGORIES

Z95 = 1.959963984540054  # the 97.5th percentile of the standard normal distribution
STAGES = ("targeted", "contacted", "delivered", "clicked", "responded", "converted")
STAGE_LABELS = {
    "targeted": "ciblées",
    "contacted": "contactées",
    "delivered": "reçues",
    "clicked": "ont cliqué",
    "responded": "ont répondu",
    "converted": "converties",
}
# The funnel's breakdown dimensions, each a field of `FunnelRow` and a column of the store's funnel, with the header
# of its report table, in the report's order: the one list the rest derives from (`DIMENSION_GROUPING`,
# `store.report.DIMENSION_COLUMNS`).
DIMENSIONS = {
    "metier_family": "Famille de métiers",
    "departement_code": "Département",
    "epci_code": "EPCI",
    "commune_code": "Commune",
    "trigger_type": "Déclencheur",
    "channel": "Canal",
    "variant": "Variante",
}


@dataclass(frozen=True, slots=True)
class FunnelRow:
    """Counts of one group of enrollments (the store's grain)."""
    arm: str
    variant: str | None
    trigger_type: str | None
    metier_family: str | None
    commune_code: str | None
    epci_code: str | None
    departement_code: str | None
    channel: str | None
    targeted: int
    contacted: int
    delivered: int
    clicked: int
    responded: int
    converted: int
    opted_out: int
    conversion_days: float  # sum of days from enrollment to first conversion, over converted enrollments
    grouping: str | None = None  # None: a fine row; else the breakdown it belongs to (see GROUPINGS)
    contacted_converted: int = 0  # converted among the contacted: the numerator of the uplift


# The breakdowns a report shows, and the dimensions each one keeps. Every grouping covers every enrollment
# once, so the funnel by arm can be read from any of them.
GROUPINGS: dict[str, tuple[str, ...]] = {
    "variant": ("variant",),
    "trigger_type": ("trigger_type",),
    "metier_family": ("metier_family",),
    "territory": ("commune_code", "epci_code", "departement_code"),
    "channel": ("channel",),
}
DIMENSION_GROUPING = {dim: name for name, dims in GROUPINGS.items() for dim in dims}


def marginals(rows: Iterable[FunnelRow]) -> list[FunnelRow]:
    """Fine rows summed into one set of rows per grouping (rows already marginal are kept as they are)."""
    rows = list(rows)
    if all(r.grouping is not None for r in rows):
        return rows
    out: list[FunnelRow] = [r for r in rows if r.grouping is not None]
    fine = [r for r in rows if r.grouping is None]
    for name, dims in GROUPINGS.items():
        sums: dict[tuple[Any, ...], list[float]] = {}  # (arm, the grouping's values)
        for r in fine:
            key = (r.arm, *(getattr(r, d) for d in dims))
            acc = sums.get(key)
            if acc is None:
                acc = sums[key] = [0, 0, 0, 0, 0, 0, 0, 0.0, 0]
            acc[0] += r.targeted
            acc[1] += r.contacted
            acc[2] += r.delivered
            acc[3] += r.clicked
            acc[4] += r.responded
            acc[5] += r.converted
            acc[6] += r.opted_out
            acc[7] += r.conversion_days
            acc[8] += r.contacted_converted
        for key, acc in sums.items():
            values: dict[str, Any] = dict.fromkeys(DIMENSIONS)
            values.update(zip(dims, key[1:], strict=True))
            out.append(
                FunnelRow(
                    key[0],
                    **values,
                    targeted=int(acc[0]),
                    contacted=int(acc[1]),
                    delivered=int(acc[2]),
                    clicked=int(acc[3]),
                    responded=int(acc[4]),
                    converted=int(acc[5]),
                    opted_out=int(acc[6]),
                    conversion_days=float(acc[7]),
                    grouping=name,
                    contacted_converted=int(acc[8]),
                )
            )
    return out


@dataclass(slots=True)
class Counts:
    """Funnel counts of a set of enrollments."""
    targeted: int = 0
    contacted: int = 0
    delivered: int = 0
    clicked: int = 0
    responded: int = 0
    converted: int = 0
    opted_out: int = 0
    conversion_days: float = 0.0
    contacted_converted: int = 0  # converted among the contacted

    def add(self, row: FunnelRow | Counts) -> None:
        for f in fields(Counts):
            setattr(self, f.name, getattr(self, f.name) + getattr(row, f.name))

    @property
    def conversion_rate(self) -> float | None:
        """Converted among targeted (the intention-to-treat rate)."""
        return self.converted / self.targeted if self.targeted else None

    @property
    def mean_days_to_conversion(self) -> float | None:
        return self.conversion_days / self.converted if self.converted else None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) when n is 0."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside 0..{n}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # Clamp float noise at the bounds (k = 0 or k = n give exactly 0 or 1).
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(k1: int, n1: int, k2: int, n2: int, z: float = Z95) -> tuple[float, float, float]:
    """Difference of two proportions p1 - p2 with Newcombe's hybrid score interval (method 10).

    Returns (difference, lower, upper). Both samples must be non-empty.
    """
    if n1 <= 0 or n2 <= 0:
        raise ValueError("both groups need at least one member")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson(k1, n1, z)
    l2, u2 = wilson(k2, n2, z)
    d = p1 - p2
    lower = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, lower, upper


@dataclass(frozen=True, slots=True)
class Uplift:
    """Conversion rate of the treated minus the control group's, with its 95 % interval."""
    basis: str  # "contacted" (treated who were reached) or "targeted" (every treatment enrollment)
    treated_n: int
    treated_converted: int
    control_n: int
    control_converted: int
    treated_rate: float
    control_rate: float
    difference: float
    lower: float
    upper: float

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.lower > 0 or self.upper < 0


def uplift(
    treated_converted: int, treated_n: int, control_converted: int, control_n: int, basis: str = "contacted"
) -> Uplift | None:
    """The uplift with Newcombe's interval; None when a group is empty."""
    if treated_n <= 0 or control_n <= 0:
        return None
    d, lo, hi = newcombe(treated_converted, treated_n, control_converted, control_n)
    return Uplift(
        basis,
        treated_n,
        treated_converted,
        control_n,
        control_converted,
        treated_converted / treated_n,
        control_converted / control_n,
        d,
        lo,
        hi,
    )


def campaign_uplift(funnel: dict[str, Counts], basis: str = "contacted") -> Uplift | None:
    """Uplift of a campaign's funnel by arm.

    "contacted" (the issue's definition): converted among contacted treatment enrollments versus
    converted among all holdout enrollments. "targeted" compares whole arms (intention to treat): it is
    not biased by who could be reached, and is shown next to it.
    """
    t, h = funnel.get("treatment", Counts()), funnel.get("holdout", Counts())
    # Conversions of treated businesses never reached are not the message's doing: count the reached ones.
    if basis == "contacted":
        return uplift(t.contacted_converted, t.contacted, h.converted, h.targeted, basis)
    return uplift(t.converted, t.targeted, h.converted, h.targeted, basis)


def group(rows: Iterable[FunnelRow], key: Callable[[FunnelRow], Any]) -> dict[Any, Counts]:
    """Sum rows by a key."""
    out: dict[Any, Counts] = {}
    for row in rows:
        out.setdefault(key(row), Counts()).add(row)
    return out


def funnel_by_arm(rows: Iterable[FunnelRow]) -> dict[str, Counts]:
    """The campaign's funnel per arm (treatment, holdout)."""
    return group(rows, lambda r: r.arm)


# --- variants (A/B) ---


@dataclass(frozen=True, slots=True)
class VariantComparison:
    """One variant against the reference (the first variant): converted and clicked among contacted."""
    variant: str
    contacted: int
    clicked: int
    converted: int
    click_rate: float | None
    conversion_rate: float | None
    vs_reference: tuple[float, float, float] | None  # (difference, lower, upper) of the conversion rate


def compare_variants(rows: Iterable[FunnelRow]) -> list[VariantComparison]:
    """The A/B comparison of a campaign's variants in the treatment arm (empty with fewer than two)."""
    by_variant = group((r for r in rows if r.arm == "treatment"), lambda r: r.variant or "-")
    if len(by_variant) < 2:
        return []
    names = sorted(by_variant)
    ref = by_variant[names[0]]
    out = []
    for name in names:
        c = by_variant[name]
        versus = None
        if name != names[0] and c.contacted and ref.contacted:
            versus = newcombe(c.contacted_converted, c.contacted, ref.contacted_converted, ref.contacted)
        out.append(
            VariantComparison(
                name,
                c.contacted,
                c.clicked,
                c.contacted_converted,
                c.clicked / c.contacted if c.contacted else None,
                c.contacted_converted / c.contacted if c.contacted else None,
                versus,
            )
        )
    return out


# --- tables: the one shape the dashboard, the CSV exports and `declic report` all print ---


@dataclass(slots=True)
class Table:
    """A titled table of plain values (numbers stay numbers; formatting is the printer's job)."""
    key: str
    title: str
    columns: list[tuple[str, str]]  # (key, French header)
    rows: list[dict[str, Any]] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)  # column -> "int" | "pct" | "pts" | "days" | "text"


@dataclass(slots=True)
class CampaignReport:
    """Everything measured about one campaign."""
    campaign: str
    title: str
    status: str
    source: str  # "live" or "rollup"
    as_of: str | None
    funnel: dict[str, Counts]
    uplift: Uplift | None
    uplift_itt: Uplift | None
    variants: list[VariantComparison]
    tables: list[Table]
    # Adoption (a `tool_adopted` attributed to the enrollment) against the control group, as for conversion.
    adoption_uplift: Uplift | None = None
    adoption_uplift_itt: Uplift | None = None

    def table(self, key: str) -> Table:
        return next(t for t in self.tables if t.key == key)


_BREAKDOWN_COLUMNS = [
    ("value", "Valeur"),
    ("label", "Libellé"),
    *((s, STAGE_LABELS[s].capitalize()) for s in STAGES),
    ("conversion_rate", "Taux de conversion"),
    ("holdout_targeted", "Témoin : ciblées"),
    ("holdout_converted", "Témoin : converties"),
    ("uplift", "Effet (points)"),
]
_BREAKDOWN_KINDS = {
    **dict.fromkeys(STAGES, "int"),
    "conversion_rate": "pct",
    "holdout_targeted": "int",
    "holdout_converted": "int",
    "uplift": "pts",
    "value": "text",
    "label": "text",
}


def _rate(n: int, d: int) -> float | None:
    return n / d if d else None


def build_report(
    *,
    campaign: str,
    title: str,
    status: str,
    rows: list[FunnelRow],
    source: str,
    as_of: str | None,
    labels: Callable[[str, str | None], str] | None = None,
    overlap: dict[str, Any] | None = None,
    adoption: dict[str, dict[str, Any]] | None = None,
    not_for_me: list[dict[str, Any]] | None = None,
    diagnostics: dict[str, dict[str, Any]] | None = None,
) -> CampaignReport:
    """The whole report of one campaign from its funnel rows. `labels(dimension, code)` names a code;
    `overlap` (`store.report.overlap_figures`) adds what the campaign left to others, the control group
    check and the global effect; `adoption` (`store.report.adoption_figures`) adds adoption by arm and its
    uplift, beside the conversion uplift."""
    labels = labels or (lambda _dim, code: code or "")
    rows = marginals(rows)
    by_grouping: dict[str, list[FunnelRow]] = {name: [] for name in GROUPINGS}
    for r in rows:
        by_grouping[r.grouping or ""].append(r)
    funnel = funnel_by_arm(by_grouping["variant"])
    for arm in ("treatment", "holdout"):
        funnel.setdefault(arm, Counts())
    up = campaign_uplift(funnel, "contacted")
    itt = campaign_uplift(funnel, "targeted")
    variants = compare_variants(by_grouping["variant"])
    tables: list[Table] = []

    funnel_table = Table(
        "funnel",
        "Entonnoir par groupe",
        [
            ("arm", "Groupe"),
            *((s, STAGE_LABELS[s].capitalize()) for s in STAGES),
            ("opted_out", "Désinscrites"),
            ("conversion_rate", "Taux de conversion"),
            ("mean_days", "Délai moyen de conversion (jours)"),
        ],
        kinds={
            **dict.fromkeys(STAGES, "int"),
            "arm": "text",
            "opted_out": "int",
            "conversion_rate": "pct",
            "mean_days": "days",
        },
    )
    for arm, label in (("treatment", "Contactés"), ("holdout", "Témoin (non contactés)")):
        c = funnel[arm]
        funnel_table.rows.append(
            {
                "arm": label,
                **{s: getattr(c, s) for s in STAGES},
                "opted_out": c.opted_out,
                "conversion_rate": c.conversion_rate,
                "mean_days": c.mean_days_to_conversion,
            }
        )
    tables.append(funnel_table)

    uplift_table = Table(
        "uplift",
        "Effet de la campagne (écart de conversion avec le groupe témoin, IC 95 %)",
        [
            ("basis", "Base"),
            ("treated_n", "Traités"),
            ("treated_converted", "Traités convertis"),
            ("treated_rate", "Taux traités"),
            ("control_n", "Témoin"),
            ("control_converted", "Témoin convertis"),
            ("control_rate", "Taux témoin"),
            ("difference", "Effet (points)"),
            ("lower", "Borne basse"),
            ("upper", "Borne haute"),
        ],
        kinds={
            "basis": "text",
            "treated_n": "int",
            "treated_converted": "int",
            "treated_rate": "pct",
            "control_n": "int",
            "control_converted": "int",
            "control_rate": "pct",
            "difference": "pts",
            "lower": "pts",
            "upper": "pts",
        },
    )
    for u, label in ((up, "contactés / témoin"), (itt, "tous les ciblés / témoin")):
        if u is not None:
            uplift_table.rows.append(
                {
                    "basis": label,
                    "treated_n": u.treated_n,
                    "treated_converted": u.treated_converted,
                    "treated_rate": u.treated_rate,
                    "control_n": u.control_n,
                    "control_converted": u.control_converted,
                    "control_rate": u.control_rate,
                    "difference": u.difference,
                    "lower": u.lower,
                    "upper": u.upper,
                }
            )
    tables.append(uplift_table)
    adoption_up = adoption_itt = None
    if adoption is not None:
        adoption_up, adoption_itt, adoption_list = adoption_tables(adoption)
        tables += adoption_list

    if variants:
        vt = Table(
            "variants",
            "Comparaison des variantes (A/B, parmi les contactés)",
            [
                ("variant", "Variante"),
                ("contacted", "Contactées"),
                ("clicked", "Ont cliqué"),
                ("converted", "Converties"),
                ("click_rate", "Taux de clic"),
                ("conversion_rate", "Taux de conversion"),
                ("difference", "Écart avec la 1re (points)"),
                ("lower", "Borne basse"),
                ("upper", "Borne haute"),
            ],
            kinds={
                "variant": "text",
                "contacted": "int",
                "clicked": "int",
                "converted": "int",
                "click_rate": "pct",
                "conversion_rate": "pct",
                "difference": "pts",
                "lower": "pts",
                "upper": "pts",
            },
        )
        for v in variants:
            d, lo, hi = v.vs_reference or (None, None, None)
            vt.rows.append(
                {
                    "variant": v.variant,
                    "contacted": v.contacted,
                    "clicked": v.clicked,
                    "converted": v.converted,
                    "click_rate": v.click_rate,
                    "conversion_rate": v.conversion_rate,
                    "difference": d,
                    "lower": lo,
                    "upper": hi,
                }
            )
        tables.append(vt)

    for dim, dim_label in DIMENSIONS.items():
        part = by_grouping[DIMENSION_GROUPING[dim]]
        t_counts = group((r for r in part if r.arm == "treatment"), attrgetter(dim))
        h_counts = group((r for r in part if r.arm == "holdout"), attrgetter(dim))
        table = Table(
            f"by_{dim}",
            "Par " + (dim_label if dim_label.isupper() else dim_label.lower()),
            list(_BREAKDOWN_COLUMNS),
            kinds=_BREAKDOWN_KINDS,
        )
        for code in sorted(set(t_counts) | set(h_counts), key=lambda c: (c is None, str(c))):
            t, h = t_counts.get(code, Counts()), h_counts.get(code, Counts())
            u = uplift(t.contacted_converted, t.contacted, h.converted, h.targeted) if t.contacted else None
            table.rows.append(
                {
                    "value": code or "",
                    "label": labels(dim, code) if code else "(inconnu)",
                    **{s: getattr(t, s) for s in STAGES},
                    "conversion_rate": t.conversion_rate,
                    "holdout_targeted": h.targeted,
                    "holdout_converted": h.converted,
                    "uplift": u.difference if u else None,
                }
            )
        tables.append(table)
    if overlap is not None:
        tables += overlap_tables(overlap)
    if diagnostics is not None:
        tables += diagnostic_tables(diagnostics)
    if not_for_me is not None:
        tables += not_for_me_tables(not_for_me, labels)
    return CampaignReport(campaign, title, status, source, as_of, funnel, up, itt, variants, tables,
                          adoption_up, adoption_itt)


def adoption_tables(adoption: dict[str, dict[str, Any]]) -> tuple[Uplift | None, Uplift | None, list[Table]]:
    """Adoption by arm (Wilson intervals), its uplift against the control group (Newcombe's interval; among the
    contacted and over whole arms, as for conversion) and adoption by category."""
    t, h = adoption.get("treatment") or {}, adoption.get("holdout") or {}
    g = {key: int(t.get(key, 0)) for key in ("targeted", "contacted", "adopted", "contacted_adopted")}
    ht, ha = int(h.get("targeted", 0)), int(h.get("adopted", 0))
    up = uplift(g["contacted_adopted"], g["contacted"], ha, ht, "contacted")
    itt = uplift(g["adopted"], g["targeted"], ha, ht, "targeted")
    by_arm = Table(
        "adoption",
        "Adoption par groupe (entreprises qui ont commencé à utiliser un outil, IC 95 %)",
        [("arm", "Groupe"), ("n", "Entreprises"), ("adopted", "Ont adopté"), ("rate", "Taux d'adoption"),
         ("lower", "Borne basse"), ("upper", "Borne haute")],
        kinds={"arm": "text", "n": "int", "adopted": "int", "rate": "pct", "lower": "pct", "upper": "pct"},
    )
    for label, k, n in (("Contactés", g["contacted_adopted"], g["contacted"]),
                        ("Tous les ciblés", g["adopted"], g["targeted"]),
                        ("Témoin (non contactés)", ha, ht)):
        lo, hi = wilson(k, n) if n else (None, None)
        by_arm.rows.append({"arm": label, "n": n, "adopted": k, "rate": _rate(k, n), "lower": lo, "upper": hi})
    effect = Table(
        "adoption_uplift",
        "Effet de la campagne sur l'adoption (écart avec le groupe témoin, IC 95 %)",
        [("basis", "Base"), ("treated_n", "Traités"), ("treated_adopted", "Traités ayant adopté"),
         ("treated_rate", "Taux traités"), ("control_n", "Témoin"), ("control_adopted", "Témoin ayant adopté"),
         ("control_rate", "Taux témoin"), ("difference", "Effet (points)"), ("lower", "Borne basse"),
         ("upper", "Borne haute")],
        kinds={"basis": "text", "treated_n": "int", "treated_adopted": "int", "treated_rate": "pct",
               "control_n": "int", "control_adopted": "int", "control_rate": "pct", "difference": "pts",
               "lower": "pts", "upper": "pts"},
    )
    for u, label in ((up, "contactés / témoin"), (itt, "tous les ciblés / témoin")):
        if u is not None:
            effect.rows.append({"basis": label, "treated_n": u.treated_n, "treated_adopted": u.treated_converted,
                                "treated_rate": u.treated_rate, "control_n": u.control_n,
                                "control_adopted": u.control_converted, "control_rate": u.control_rate,
                                "difference": u.difference, "lower": u.lower, "upper": u.upper})
    categories = Table(
        "adoption_by_category",
        "Adoption par type d'outil",
        [("category", "Type d'outil"), ("treated", "Ciblés ayant adopté"), ("treated_rate", "Taux ciblés"),
         ("control", "Témoin ayant adopté"), ("control_rate", "Taux témoin")],
        kinds={"category": "text", "treated": "int", "treated_rate": "pct", "control": "int",
               "control_rate": "pct"},
    )
    tc, hc = t.get("categories") or {}, h.get("categories") or {}
    for code, label in ADOPTION_CATEGORIES.items():
        if tc.get(code) or hc.get(code):
            k1, k2 = int(tc.get(code, 0)), int(hc.get(code, 0))
            categories.rows.append({"category": label, "treated": k1, "treated_rate": _rate(k1, g["targeted"]),
                                    "control": k2, "control_rate": _rate(k2, ht)})
    return up, itt, [by_arm, effect, categories]


WELL_EQUIPPED = 4  # a diagnostic score of 4 or 5 out of 5: "bien équipé" (`orchestrator.core.barometer.maturity_level`)


def mean_interval(values: list[int], z: float = Z95) -> tuple[float | None, float | None, float | None]:
    """The mean of `values` and its normal 95 % interval (None without values; no width with one value)."""
    n = len(values)
    if not n:
        return None, None, None
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def diagnostic_tables(figures: dict[str, dict[str, Any]]) -> list[Table]:
    """Maturity and appetite from the self-diagnostics, by arm (Wilson intervals, the mean score's normal interval)
    and the difference with the control group (Newcombe's interval for the share well equipped, the normal one for
    the mean score), with the numbers offered and answering (`store.report.diagnostic_figures`)."""
    by_arm = Table(
        "diagnostic",
        "Maturité numérique par groupe, d'après les diagnostics refaits (IC 95 %)",
        [("arm", "Groupe"), ("asked", "Diagnostic proposé"), ("n", "Réponses"), ("mean", "Score moyen (sur 5)"),
         ("mean_lower", "Score : borne basse"), ("mean_upper", "Score : borne haute"),
         ("well_equipped", "Bien équipées (4 ou 5 sur 5)"), ("rate", "Part bien équipées"),
         ("lower", "Borne basse"), ("upper", "Borne haute"), ("appetite_n", "Réponses avec l'envie"),
         ("appetite_high", "Part avec « envie d'avancer »")],
        kinds={"arm": "text", "asked": "int", "n": "int", "mean": "days", "mean_lower": "days",
               "mean_upper": "days", "well_equipped": "int", "rate": "pct", "lower": "pct", "upper": "pct",
               "appetite_n": "int", "appetite_high": "pct"},
    )
    counts = {}
    for arm, label in (("treatment", "Contactées"), ("holdout", "Témoin (échantillon tiré au sort)")):
        f = figures.get(arm) or {}
        scores, appetites = list(f.get("scores") or []), list(f.get("appetites") or [])
        k, n = sum(1 for s in scores if s >= WELL_EQUIPPED), len(scores)
        counts[arm] = (k, n, scores)
        mean, mlo, mhi = mean_interval(scores)
        lo, hi = wilson(k, n) if n else (None, None)
        by_arm.rows.append({"arm": label, "asked": int(f.get("asked") or 0), "n": n, "mean": mean, "mean_lower": mlo,
                            "mean_upper": mhi, "well_equipped": k, "rate": _rate(k, n), "lower": lo, "upper": hi,
                            "appetite_n": len(appetites),
                            "appetite_high": _rate(sum(1 for a in appetites if a == "high"), len(appetites))})
    effect = Table(
        "diagnostic_uplift",
        "Effet sur la maturité numérique (contactées moins témoin, IC 95 %)",
        [("measure", "Mesure"), ("treated_n", "Réponses contactées"), ("control_n", "Réponses témoin"),
         ("difference", "Écart"), ("lower", "Borne basse"), ("upper", "Borne haute")],
        kinds={"measure": "text", "treated_n": "int", "control_n": "int", "difference": "days", "lower": "days",
               "upper": "days"},
    )
    (k1, n1, s1), (k2, n2, s2) = counts["treatment"], counts["holdout"]
    if n1 and n2:
        diff, lo, hi = newcombe(k1, n1, k2, n2)
        effect.rows.append({"measure": "Part bien équipées (points)", "treated_n": n1, "control_n": n2,
                            "difference": diff * 100, "lower": lo * 100, "upper": hi * 100})
        m1, m2 = sum(s1) / n1, sum(s2) / n2
        var = (sum((v - m1) ** 2 for v in s1) / max(n1 - 1, 1) / n1
               + sum((v - m2) ** 2 for v in s2) / max(n2 - 1, 1) / n2)
        half = Z95 * math.sqrt(var)
        effect.rows.append({"measure": "Score moyen (sur 5)", "treated_n": n1, "control_n": n2,
                            "difference": m1 - m2, "lower": m1 - m2 - half, "upper": m1 - m2 + half})
    return [by_arm, effect]


NOT_FOR_ME_SPLITS = {
    "metier_family": ("not_for_me_by_family", "Réponses « pas pour moi » par raison et famille de métiers",
                      "Famille de métiers"),
    "epci_code": ("not_for_me_by_epci", "Réponses « pas pour moi » par raison et intercommunalité",
                  "Intercommunalité"),
}


def not_for_me_tables(rows: list[dict[str, Any]], labels: Callable[[str, str | None], str]) -> list[Table]:
    """The "Ce n'est pas pour moi" answers by reason x trade family and by reason x EPCI (`store.report.
    not_for_me_figures`), counted in businesses, most frequent reason first, French labels only."""
    by_reason: dict[str, int] = {}
    for r in rows:
        by_reason[r["reason"]] = by_reason.get(r["reason"], 0) + r["businesses"]
    order = {reason: i for i, reason in enumerate(sorted(by_reason, key=lambda x: (-by_reason[x], x)))}
    out = []
    for dim, (key, title, header) in NOT_FOR_ME_SPLITS.items():
        counts: dict[tuple[str, str], int] = {}
        for r in rows:
            counts[(r["reason"], r[dim])] = counts.get((r["reason"], r[dim]), 0) + r["businesses"]
        table = Table(key, title, [("reason", "Raison"), ("label", header), ("businesses", "Entreprises"),
                                   ("share", "Part des réponses de cette raison")],
                      kinds={"reason": "text", "label": "text", "businesses": "int", "share": "pct"})
        for (reason, code), n in sorted(counts.items(), key=lambda x: (order[x[0][0]], -x[1], x[0][1])):
            table.rows.append({"reason": fr_label("not_for_me", reason),
                               "label": (labels(dim, code) or code) if code else "(inconnu)",
                               "businesses": n, "share": _rate(n, by_reason[reason])})
        out.append(table)
    return out


def overlap_tables(overlap: dict[str, Any]) -> list[Table]:
    """Businesses left to other campaigns (by whom), the control group check, the global effect."""
    covered = Table(
        "covered",
        "Entreprises déjà accompagnées par une autre campagne (hors de la portée, de l'entonnoir et du témoin)",
        [("campaign", "Campagne"), ("by", "Portée par"), ("businesses", "Entreprises")],
        kinds={"campaign": "text", "by": "text", "businesses": "int"},
    )
    for name, by, n in overlap.get("covered", []):
        covered.rows.append({"campaign": name, "by": by, "businesses": n})
    if overlap.get("global_held"):
        covered.rows.append({"campaign": "(groupe témoin global du territoire)", "by": "aucune campagne",
                             "businesses": overlap["global_held"]})
    check = Table(
        "control_check",
        "Groupe témoin propre : entreprises témoins contactées par une campagne pour le même moment (doit être 0)",
        [("control_n", "Entreprises témoins"), ("contacted", "Contactées pour ce moment")],
        kinds={"control_n": "int", "contacted": "int"},
        rows=[{"control_n": overlap.get("control_n", 0), "contacted": overlap.get("control_contacted", 0)}],
    )
    effect = Table(
        "global_effect",
        "Effet global du programme sur le territoire (toutes campagnes / groupe témoin global, IC 95 %)",
        [("territory", "Territoire"), ("percent", "Part témoin"), ("programme_n", "Programme"),
         ("programme_rate", "Taux programme"), ("global_n", "Témoin global"), ("global_rate", "Taux témoin global"),
         ("difference", "Effet global (points)"), ("lower", "Borne basse"), ("upper", "Borne haute")],
        kinds={"territory": "text", "percent": "pct", "programme_n": "int", "programme_rate": "pct",
               "global_n": "int", "global_rate": "pct", "difference": "pts", "lower": "pts", "upper": "pts"},
    )
    for g in overlap.get("global_effect", []):
        u = uplift(g["programme_converted"], g["programme_n"], g["global_converted"], g["global_n"], "targeted")
        effect.rows.append({
            "territory": f"{g['level']} {g['code']}", "percent": g["percent"] / 100,
            "programme_n": g["programme_n"], "programme_rate": _rate(g["programme_converted"], g["programme_n"]),
            "global_n": g["global_n"], "global_rate": _rate(g["global_converted"], g["global_n"]),
            "difference": u.difference if u else None, "lower": u.lower if u else None,
            "upper": u.upper if u else None})
    return [covered, check, effect]


# --- French number format (shared by the dashboard and the terminal table) ---

NBSP = "\u202f"  # narrow no-break space: the French thousands separator


def fr_int(value: int | float | None) -> str:
    """12345 -> "12 345" (narrow no-break space)."""
    if value is None:
        return "–"
    return f"{int(round(value)):,}".replace(",", NBSP)


def fr_decimal(value: float | None, digits: int = 1) -> str:
    """3.14159 -> "3,1"."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    return text.replace(",", NBSP).replace(".", ",")


def fr_percent(value: float | None, digits: int = 1) -> str:
    """0.1234 -> "12,3 %"."""
    return "–" if value is None else f"{fr_decimal(value * 100, digits)}\u00a0%"


def fr_points(value: float | None, digits: int = 1) -> str:
    """A difference of rates in percentage points, signed: 0.052 -> "+5,2 pts"."""
    if value is None:
        return "–"
    sign = "+" if value > 0 else ("−" if value < 0 else "")
    return f"{sign}{fr_decimal(abs(value) * 100, digits)}\u00a0pts"


def fr_cell(value: Any, kind: str) -> str:
    """One table cell in French format, by column kind."""
    if kind == "int":
        return fr_int(value)
    if kind == "pct":
        return fr_percent(value)
    if kind == "pts":
        return fr_points(value)
    if kind == "days":
        return fr_decimal(value)
    return "" if value is None else str(value)


# --- exports ---


def table_csv(table: Table) -> str:
    """One table as CSV (comma separated, raw numbers with a dot, French headers)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([header for _, header in table.columns])
    for row in table.rows:
        writer.writerow(["" if row.get(key) is None else _raw(row.get(key)) for key, _ in table.columns])
    return out.getvalue()


def _raw(value: Any) -> Any:
    # Rates keep 6 decimals: enough to recompute every displayed figure, stable across runs.
    return round(value, 6) if isinstance(value, float) else value


def report_dict(report: CampaignReport) -> dict[str, Any]:
    """The report as plain JSON-ready values."""
    def counts(c: Counts) -> dict[str, Any]:
        return {
            **{s: getattr(c, s) for s in STAGES},
            "opted_out": c.opted_out,
            "conversion_rate": c.conversion_rate,
            "mean_days_to_conversion": c.mean_days_to_conversion,
        }

    def up(u: Uplift | None) -> dict[str, Any] | None:
        if u is None:
            return None
        return {
            "basis": u.basis,
            "treated_n": u.treated_n,
            "treated_converted": u.treated_converted,
            "control_n": u.control_n,
            "control_converted": u.control_converted,
            "treated_rate": u.treated_rate,
            "control_rate": u.control_rate,
            "difference": u.difference,
            "ci95": [u.lower, u.upper],
            "significant": u.significant,
        }

    return {
        "campaign": report.campaign,
        "title": report.title,
        "status": report.status,
        "source": report.source,
        "as_of": report.as_of,
        "funnel": {arm: counts(c) for arm, c in report.funnel.items()},
        "uplift": up(report.uplift),
        "uplift_intention_to_treat": up(report.uplift_itt),
        "adoption_uplift": up(report.adoption_uplift),
        "adoption_uplift_intention_to_treat": up(report.adoption_uplift_itt),
        "tables": {
            t.key: {
                "title": t.title,
                "columns": [k for k, _ in t.columns],
                "rows": [{k: _raw(r.get(k)) for k, _ in t.columns} for r in t.rows],
            }
            for t in report.tables
        },
    }
