"""Territories: commune -> EPCI -> département -> région, from the shipped Etalab découpage administratif.

Pure and stdlib only. The files in ``segments/data/`` (rebuilt by
``python -m segments.data.build_reference``) are read once and cached.

Codes are INSEE codes, as strings:
- commune: 5 characters (``75056``, ``2A004``, ``97105``). Municipal arrondissements (Paris
  ``75101``-``75120``, Lyon ``69381``-``69389``, Marseille ``13201``-``13216``) and former communes merged
  into a commune nouvelle (communes déléguées / associées) have codes of their own; `commune` resolves them
  to the current commune.
- EPCI: 9-digit SIREN (``200054781`` Métropole du Grand Paris).
- département: ``01``-``95``, ``2A``, ``2B``, ``971``-``989``.
- région: ``01``-``06`` overseas, ``11``-``94`` metropolitan, plus ``975``-``989`` for the overseas
  collectivités.

Région and département codes overlap: ``11`` is both the région Île-de-France and the département Aude,
``975`` is both the département and the région of Saint-Pierre-et-Miquelon. A bare code is therefore
ambiguous, and every function that takes a territory code also takes its level explicitly (``commune``,
``epci``, ``departement``, ``region``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

__all__ = [
    "LEVELS",
    "Level",
    "CommuneInfo",
    "Epci",
    "Departement",
    "Region",
    "commune",
    "epcis",
    "departements",
    "regions",
    "departement_timezone",
    "communes_of",
    "validate_codes",
]

Level = Literal["commune", "epci", "departement", "region"]
LEVELS: tuple[str, ...] = ("commune", "epci", "departement", "region")


@dataclass(frozen=True, slots=True)
class CommuneInfo:
    """A current commune and the territories it belongs to (`epci` is None for the few outside any EPCI)."""

    code: str
    nom: str
    epci: str | None
    departement: str
    region: str


@dataclass(frozen=True, slots=True)
class Epci:
    """An intercommunality (EPCI à fiscalité propre): SIREN code, name, kind (CC, CA, CU, METRO, MET69)."""

    code: str
    nom: str
    type: str


@dataclass(frozen=True, slots=True)
class Departement:
    """A département with its région and the IANA time zone its send windows are computed in."""

    code: str
    nom: str
    region: str
    timezone: str


@dataclass(frozen=True, slots=True)
class Region:
    """A région (or overseas collectivité acting as one)."""

    code: str
    nom: str


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("segments.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def _commune_rows() -> dict[str, dict[str, str]]:
    """Every row of communes.csv (current communes, arrondissements, former communes) by code."""
    return {row["code"]: row for row in _read_csv("communes.csv")}


@cache
def _current_communes() -> dict[str, CommuneInfo]:
    return {
        code: CommuneInfo(
            code=code,
            nom=row["nom"],
            epci=row["epci"] or None,
            departement=row["departement"],
            region=row["region"],
        )
        for code, row in _commune_rows().items()
        if row["type"] == "commune-actuelle"
    }


@cache
def _subdivisions() -> dict[str, frozenset[str]]:
    """Current commune code -> codes of its arrondissements and former communes."""
    children: dict[str, set[str]] = {}
    for code, row in _commune_rows().items():
        if row["parent"]:
            children.setdefault(row["parent"], set()).add(code)
    return {parent: frozenset(codes) for parent, codes in children.items()}


@cache
def _members() -> dict[tuple[str, str], frozenset[str]]:
    """(level, code) -> current commune codes, for the epci, departement and region levels."""
    groups: dict[tuple[str, str], set[str]] = {}
    for info in _current_communes().values():
        keys = [("departement", info.departement), ("region", info.region)]
        if info.epci:
            keys.append(("epci", info.epci))
        for key in keys:
            groups.setdefault(key, set()).add(info.code)
    return {key: frozenset(codes) for key, codes in groups.items()}


@cache
def epcis() -> dict[str, Epci]:
    """All EPCI by SIREN code."""
    return {row["code"]: Epci(**row) for row in _read_csv("epci.csv")}


@cache
def departements() -> dict[str, Departement]:
    """All départements by code (``01`` ... ``2A`` ... ``989``)."""
    return {row["code"]: Departement(**row) for row in _read_csv("departements.csv")}


@cache
def regions() -> dict[str, Region]:
    """All régions by code."""
    return {row["code"]: Region(**row) for row in _read_csv("regions.csv")}


def _clean(code: str) -> str:
    # Corsican codes are sometimes typed in lowercase ("2a004"); nothing else is guessed (no zero padding).
    return str(code).strip().upper()


def commune(code: str) -> CommuneInfo | None:
    """The current commune for an INSEE code, resolving arrondissements and former communes to their parent.

    ``commune("75101").code == "75056"``. None for an unknown code.
    """
    row = _commune_rows().get(_clean(code))
    if row is None:
        return None
    return _current_communes().get(row["parent"] or row["code"])


def departement_timezone(dep: str) -> str:
    """IANA time zone of a département (``Europe/Paris``, ``America/Cayenne`` ...); ValueError if unknown."""
    entry = departements().get(_clean(dep))
    if entry is None:
        raise ValueError(f"unknown département code {dep!r}")
    return entry.timezone


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"unknown territory level {level!r}: expected one of {', '.join(LEVELS)}")


def communes_of(level: Level, code: str, *, with_subdivisions: bool = False) -> frozenset[str]:
    """Codes of the current communes in the territory `code` of `level`; empty for an unknown code.

    With ``with_subdivisions=True`` the codes of their arrondissements and former communes are added too, for
    matching raw codes as found in Sirene (Paris establishments carry ``75101``-``75120``, not ``75056``).
    """
    _check_level(level)
    if level == "commune":
        info = commune(code)
        current = frozenset({info.code}) if info else frozenset()
    else:
        current = _members().get((level, _clean(code)), frozenset())
    if not with_subdivisions:
        return current
    subdivisions = _subdivisions()
    return current.union(*(subdivisions.get(c, ()) for c in current))


def validate_codes(level: Level, codes: Iterable[str]) -> list[str]:
    """The codes of `codes` that are unknown at `level`, in input order, without duplicates.

    At the commune level, arrondissement and former commune codes count as known (they resolve to a commune).
    """
    _check_level(level)
    known = {
        "commune": _commune_rows(),
        "epci": epcis(),
        "departement": departements(),
        "region": regions(),
    }[level]
    unknown: list[str] = []
    for code in codes:
        if _clean(code) not in known and code not in unknown:
            unknown.append(code)
    return unknown
