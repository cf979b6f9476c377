"""The segment language: who a campaign reaches, written in YAML/JSON and validated (compiled to SQL by the store).

A segment is a mapping; every field narrows it (fields are combined with AND, values inside a field with OR):

```yaml
families: [batiment, alimentation]          # métier families (segments/data/families.csv)
naf: ["43.2", "56.10A"]                     # NAF prefixes (division, group, class or sub-class)
territory:                                  # explicit levels, several codes each (OR across levels)
  epci: ["243500139"]
  departements: ["35"]
headcount: ["0", "1-2", "3-5"]              # bands ("0", "1-2", "3-5", "6-9", "10-19", "20-49", "50+",
                                            # "unknown") or Sirene tranche codes ("00", "01", "NN"...)
legal_forms: ["1", "54", "5710", unknown]   # INSEE catégorie juridique: level I (1 digit), II (2) or the full code
                                            # (4); 1 entrepreneur individuel, 54 SARL, 57 SAS; `unknown`: not known
stages: [creation, first_hires]             # Business.lifecycle_stage
triggers: {types: [creation], within: 90d}  # businesses with such an event (optionally recent)
age: {min: 3mo, max: 3y}                    # time since creation_date (d, w, mo, y)
reachable: [email, phone, postal]           # at least one of these contact points is known
converted: false                            # offer enrolled / diagnostic completed / ambassador met, or not
digital_maturity: {max: 2, unknown: true}   # self-diagnostic score 0-5; `unknown` keeps businesses without one
exclude: {families: [sante]}                # a nested segment taken out
```

Unknown fields or codes are errors that name them. Pure: the store's `store.segment_sql.compile_segment` turns a
segment into one SQL WHERE clause over its tables.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.core.durations import ambiguous_m, parse_duration
from segments import taxonomy
from segments.territory import Level, communes_of, normalise_mapping, parse_territory_text, validate_codes
from triggers.lifecycle import STAGES
from triggers.model import EVENT_TYPES

CONVERSION_KINDS = ("offer_enrolled", "diagnostic_completed", "ambassador_met")
REACHABLE = ("email", "phone", "postal")
# The stored reachability (store.models: Business.reach, computed by the database): one bit per contact point.
REACH_BITS = {"email": 1, "phone": 2, "postal": 4}

# Sirene head-count tranches (tranche_effectifs) behind each band a collectivité writes.
HEADCOUNT_BANDS: dict[str, tuple[str, ...]] = {
    "0": ("NN", "00"),
    "1-2": ("01",),
    "3-5": ("02",),
    "6-9": ("03",),
    "10-19": ("11",),
    "20-49": ("12",),
    "50+": ("21", "22", "31", "32", "41", "42", "51", "52", "53"),
}
TRANCHES = frozenset(code for codes in HEADCOUNT_BANDS.values() for code in codes)
# The longest age or look-back a segment may name: beyond it a value is a typo, and subtracting it from
# today would overflow while planning.
MAX_AGE = dt.timedelta(days=100 * 365)


def parse_age(value: str | int, what: str = "durée") -> dt.timedelta:
    """An age or look-back: `"90d"`, `"6mo"`, `"3y"` (`orchestrator.core.durations`) or a number of days, at most a
    hundred years; otherwise a French ValueError naming `what` (the field, in words). The old `m` means 30 days."""
    return parse_duration(value, what, MAX_AGE, old_m="mo")


def segment_warnings(seg: Segment, where: str = "segment") -> list[str]:
    """The segment's durations written in the ambiguous old unit `m`, as sentences for its author (nested
    exclusions included)."""
    durations: list[tuple[str | int | None, str]] = []
    if seg.age is not None:
        durations += [(seg.age.min, f"{where}, âge minimal (age.min)"),
                      (seg.age.max, f"{where}, âge maximal (age.max)")]
    if seg.triggers is not None:
        durations.append((seg.triggers.within, f"{where}, période des événements (within)"))
    found = [ambiguous_m(value, what, "mo") for value, what in durations]
    inner = segment_warnings(seg.exclude, f"{where}, exclusion") if seg.exclude is not None else []
    return [w for w in found if w is not None] + inner


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TerritoryFilter(_Strict):
    """Territory codes by explicit level (région and département codes overlap: "11" is both)."""

    communes: list[str] = Field(default_factory=list)
    epci: list[str] = Field(default_factory=list)
    departements: list[str] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _one_syntax(cls, data: Any) -> Any:
        # The territory syntax of every command and form (segments.territory): "departement:35, Bruz" as a
        # string or a list, or a mapping with singular keys ("departement") or names ("Rennes Métropole").
        if isinstance(data, str | list | tuple):
            return parse_territory_text(data)
        if isinstance(data, dict) and all(isinstance(k, str) for k in data):
            return normalise_mapping(data, check_codes=False)
        return data

    def is_empty(self) -> bool:
        return not (self.communes or self.epci or self.departements or self.regions)

    def levels(self) -> list[tuple[Level, list[str]]]:
        """(level, codes) pairs, in the vocabulary of `segments.territory`."""
        return [("commune", self.communes), ("epci", self.epci), ("departement", self.departements),
                ("region", self.regions)]

    def unknown_codes(self) -> list[str]:
        """Codes that name no known territory, as "level:code"."""
        return [f"{level}:{c}" for level, codes in self.levels() for c in validate_codes(level, codes)]

    def communes_covered(self) -> set[str]:
        """Every commune code inside this territory."""
        out: set[str] = set()
        for level, codes in self.levels():
            for code in codes:
                out |= communes_of(level, code)
        return out

    def contains(self, commune: str | None, epci: str | None, departement: str | None, region: str | None) -> bool:
        """Is a place with these codes inside the territory? (An empty territory contains everything.)"""
        if self.is_empty():
            return True
        return ((commune is not None and commune in self._commune_codes()) or (epci in self.epci)
                or (departement in self.departements) or (region in self.regions))

    def _commune_codes(self) -> frozenset[str]:
        out: set[str] = set()
        for code in self.communes:
            out |= communes_of("commune", code, with_subdivisions=True)
        return frozenset(out)


class Range(_Strict):
    """A closed range; either end may be left open."""

    min: str | int | None = None
    max: str | int | None = None


class TriggerFilter(_Strict):
    """Businesses with at least one accepted event of these types, optionally within a recent period."""

    types: list[str] = Field(min_length=1)
    within: str | int | None = None

    @field_validator("types")
    @classmethod
    def _types(cls, value: list[str]) -> list[str]:
        unknown = [t for t in value if t not in EVENT_TYPES]
        if unknown:
            raise ValueError(f"types d'événement inconnus: {', '.join(unknown)}")
        return value

    @field_validator("within")
    @classmethod
    def _within(cls, value: str | int | None) -> str | int | None:
        if value is not None:
            parse_age(value, "période des événements (within)")
        return value


class MaturityFilter(_Strict):
    """Digital maturity bounds (self-diagnostic 0-5); `unknown` says whether businesses without a score count."""

    min: int | None = Field(default=None, ge=0, le=5)
    max: int | None = Field(default=None, ge=0, le=5)
    unknown: bool = False


class Segment(_Strict):
    """A segment as a collectivité writes it (see the module docstring for every field)."""

    families: list[str] = Field(default_factory=list)
    naf: list[str] = Field(default_factory=list)
    territory: TerritoryFilter = Field(default_factory=TerritoryFilter)
    headcount: list[str] = Field(default_factory=list)
    legal_forms: list[str] = Field(default_factory=list)
    stages: list[str] = Field(default_factory=list)
    triggers: TriggerFilter | None = None
    age: Range | None = None
    reachable: list[str] = Field(default_factory=list)
    converted: bool | None = None
    digital_maturity: MaturityFilter | None = None
    exclude: Segment | None = None

    @field_validator("families")
    @classmethod
    def _families(cls, value: list[str]) -> list[str]:
        unknown = [f for f in value if f not in taxonomy.families()]
        if unknown:
            raise ValueError(f"familles de métiers inconnues: {', '.join(unknown)}")
        return value

    @field_validator("naf")
    @classmethod
    def _naf(cls, value: list[str]) -> list[str]:
        out, unknown = [], []
        for raw in value:
            prefix = normalize_naf_prefix(raw)
            if prefix is None:
                unknown.append(raw)
            else:
                out.append(prefix)
        if unknown:
            raise ValueError(f"codes NAF inconnus: {', '.join(map(str, unknown))}")
        return out

    @field_validator("headcount")
    @classmethod
    def _headcount(cls, value: list[str]) -> list[str]:
        unknown = [v for v in value if v not in HEADCOUNT_BANDS and v not in TRANCHES and v != "unknown"]
        if unknown:
            raise ValueError(f"tranches d'effectif inconnues: {', '.join(unknown)} "
                             f"(connues: {', '.join(HEADCOUNT_BANDS)}, unknown, ou un code Sirene)")
        return value

    @field_validator("legal_forms")
    @classmethod
    def _legal_forms(cls, value: list[str]) -> list[str]:
        out = [str(v).strip() for v in value]
        unknown = [v for v in out if v != "unknown" and taxonomy.legal_form_label(v) is None]
        if unknown:
            raise ValueError(f"catégories juridiques inconnues: {', '.join(unknown)} (un code INSEE à 1, 2 ou 4 "
                             "chiffres, par exemple 1 entrepreneur individuel, 54 SARL, 57 SAS ; ou unknown)")
        return out

    @field_validator("stages")
    @classmethod
    def _stages(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in STAGES]
        if unknown:
            raise ValueError(f"étapes de vie inconnues: {', '.join(unknown)} (connues: {', '.join(STAGES)})")
        return value

    @field_validator("reachable")
    @classmethod
    def _reachable(cls, value: list[str]) -> list[str]:
        unknown = [r for r in value if r not in REACHABLE]
        if unknown:
            raise ValueError(f"moyens de contact inconnus: {', '.join(unknown)} (connus: {', '.join(REACHABLE)})")
        return value

    @field_validator("age")
    @classmethod
    def _age(cls, value: Range | None) -> Range | None:
        if value is not None:
            for bound, what in ((value.min, "âge minimal (age.min)"), (value.max, "âge maximal (age.max)")):
                if bound is not None:
                    parse_age(bound, what)
        return value

    @model_validator(mode="after")
    def _codes(self) -> Segment:
        unknown = self.territory.unknown_codes()
        if unknown:
            raise ValueError(f"codes de territoire inconnus: {', '.join(unknown)}")
        return self


def normalize_naf_prefix(raw: str) -> str | None:
    """A NAF prefix in the stored dotted form ("43", "43.2", "43.22", "43.22A"), or None when nothing has it."""
    text = str(raw).strip().upper().replace(".", "")
    if not re.fullmatch(r"\d{2}(\d{1,2}[A-Z]?)?", text):
        return None
    prefix = text if len(text) <= 2 else f"{text[:2]}.{text[2:]}"
    return prefix if any(code.startswith(prefix) for code in taxonomy.naf_entries()) else None


def parse_segment(data: dict[str, Any] | None) -> Segment:
    """Validate a segment mapping (from YAML/JSON)."""
    return Segment.model_validate(data or {})


def legal_form_prefixes(codes: list[str]) -> tuple[list[str], bool]:
    """The legal-form code prefixes a segment asks for (one that another one covers is left out: "5" covers
    "57"), and whether it asks for businesses whose legal form is unknown."""
    prefixes = sorted({c for c in codes if c != "unknown"})
    kept = [p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)]
    return kept, "unknown" in codes


def tranche_codes(bands: list[str]) -> tuple[list[str], bool]:
    """The Sirene tranche codes behind head-count bands (a tranche code stands for itself), and whether the bands
    ask for businesses whose head-count is unknown."""
    codes: list[str] = []
    unknown = False
    for band in bands:
        if band == "unknown":
            unknown = True
        else:
            codes += HEADCOUNT_BANDS.get(band, (band,))
    return sorted(set(codes)), unknown
