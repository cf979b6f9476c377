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
import unicodedata
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
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
    "METROPOLITAN_TIMEZONE",
    "communes_of",
    "departements_of",
    "validate_codes",
    "TerritoryError",
    "Place",
    "parse_place",
    "parse_places",
    "parse_territory_text",
    "places_filter",
    "places_scope",
    "normalise_mapping",
    "place_name",
    "territory_label",
    "search_places",
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
    return _commune(_clean(code))


@lru_cache(maxsize=8192)
def _commune(code: str) -> CommuneInfo | None:
    # Cached: a batch of businesses repeats the same communes.
    row = _commune_rows().get(code)
    if row is None:
        return None
    return _current_communes().get(row["parent"] or row["code"])


# Reference data, not a setting: the time zone of every metropolitan département, also assumed for a place that
# is not known. The deployment's own zone (local dates, hours shown) is `Settings.timezone`.
METROPOLITAN_TIMEZONE = "Europe/Paris"


def departement_timezone(dep: str) -> str:
    """IANA time zone of a département (`METROPOLITAN_TIMEZONE`, ``America/Cayenne`` ...); ValueError if
    unknown."""
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


def departements_of(region: str) -> frozenset[str]:
    """Codes of the départements whose communes are in the région `region` (as the commune table pairs them, which
    is how a business row gets both); empty for an unknown code."""
    return _departements_by_region().get(_clean(region), frozenset())


@cache
def _departements_by_region() -> dict[str, frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for info in _current_communes().values():
        groups.setdefault(info.region, set()).add(info.departement)
    return {region: frozenset(deps) for region, deps in groups.items()}


def validate_codes(level: Level, codes: Iterable[str]) -> list[str]:
    """The codes of `codes` that are unknown at `level`, in input order, without duplicates.

    At the commune level, arrondissement and former commune codes count as known (they resolve to a commune).
    """
    _check_level(level)
    tables: dict[str, Container[str]] = {
        "commune": _commune_rows(),
        "epci": epcis(),
        "departement": departements(),
        "region": regions(),
    }
    known = tables[level]
    unknown: list[str] = []
    for code in codes:
        if _clean(code) not in known and code not in unknown:
            unknown.append(code)
    return unknown


# --- One territory syntax for every command, form and spec -------------------------------------------------
#
# "departement:35", "epci:243500139", "commune:35238", "region:53" (the plural forms of older specs and
# scopes, "departements:35", mean the same), or a name from the reference data: "Rennes Métropole",
# "Ille-et-Vilaine", "Bruz", optionally with its level ("commune:Bruz"). Several places are separated by
# commas, semicolons or new lines. Every code is checked against the reference data.

class TerritoryError(ValueError):
    """A territory that names nothing known, or several things: the message is a French sentence."""


LEVEL_ALIASES: dict[str, str] = {
    "commune": "commune", "communes": "commune",
    "epci": "epci", "intercommunalite": "epci", "intercommunalites": "epci",
    "departement": "departement", "departements": "departement", "dep": "departement",
    "region": "region", "regions": "region",
}
LEVEL_WORDS = {"commune": "commune", "epci": "intercommunalité", "departement": "département", "region": "région"}
PLURAL_KEYS = {"commune": "communes", "epci": "epci", "departement": "departements", "region": "regions"}
EXAMPLES = "departement:35, epci:243500139, commune:35238, region:53, ou un nom : Rennes Métropole, Bruz"


@dataclass(frozen=True, slots=True)
class Place:
    """One territory of the reference data: its level, its code and its name."""
    level: str
    code: str
    name: str

    @property
    def key(self) -> str:
        """The canonical syntax, "departement:35"."""
        return f"{self.level}:{self.code}"

    @property
    def label(self) -> str:
        """What a person reads: "Ille-et-Vilaine (département 35)"."""
        return f"{self.name} ({LEVEL_WORDS[self.level]} {self.code})"


def _norm(text: str) -> str:

    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    for sep in "-'’_.":
        plain = plain.replace(sep, " ")
    return " ".join(plain.casefold().split())


def place_name(level: str, code: str) -> str | None:
    """The name of a territory of the reference data, None when the code is unknown at that level."""
    _check_level(level)
    code = _clean(code)
    if level == "commune":
        row = _commune_rows().get(code)
        return row["nom"] if row else None
    named: dict[str, Mapping[str, Epci | Departement | Region]] = {
        "epci": epcis(), "departement": departements(), "region": regions()}
    found = named[level].get(code)
    return found.nom if found else None


@cache
def _by_name() -> dict[str, tuple[Place, ...]]:
    """Normalised name -> every territory of that name (current communes, EPCI, départements, régions)."""
    index: dict[str, list[Place]] = {}
    entries: list[Place] = [Place("commune", c.code, c.nom) for c in _current_communes().values()]
    entries += [Place("epci", e.code, e.nom) for e in epcis().values()]
    entries += [Place("departement", d.code, d.nom) for d in departements().values()]
    entries += [Place("region", r.code, r.nom) for r in regions().values()]
    for place in entries:
        index.setdefault(_norm(place.name), []).append(place)
    return {name: tuple(places) for name, places in index.items()}


def _context(place: Place) -> str:
    # What tells two places of the same name apart: a commune's département, else its level.
    if place.level == "commune":
        info = commune(place.code)
        dep = departements().get(info.departement) if info else None
        return f"{place.key} ({place.name}, {dep.nom if dep else '?'})"
    return f"{place.key} ({place.name}, {LEVEL_WORDS[place.level]})"


def _by_name_lookup(name: str, level: str | None) -> Place:
    found = [p for p in _by_name().get(_norm(name), ()) if level is None or p.level == level]
    if not found:
        close = [p.label for p in search_places(name, limit=5) if level is None or p.level == level]
        hint = f" Vouliez-vous dire : {', '.join(close)} ?" if close else f" Exemples : {EXAMPLES}."
        raise TerritoryError(f"Territoire inconnu : « {name} ».{hint}")
    if len(found) > 1:
        # Paris (commune and département), Guyane (département and région)... cover the same communes: the
        # widest level says it once. Otherwise the person chooses.
        covers = {communes_of(p.level, p.code) for p in found}  # type: ignore[arg-type]
        if len(covers) == 1:
            return max(found, key=lambda p: LEVELS.index(p.level))
        # A région or a département is what a person means by its name ("Bretagne", not the commune of Indre).
        wide = [p for p in found if p.level in ("departement", "region")]
        if len(wide) == 1:
            return wide[0]
        shown = ", ".join(_context(p) for p in found[:8]) + (" ..." if len(found) > 8 else "")
        raise TerritoryError(f"« {name} » désigne plusieurs territoires : {shown}. Précisez avec le code, par "
                             f"exemple {found[0].key}.")
    return found[0]


def parse_place(text: str) -> Place:
    """One territory: "departement:35", "departements:35" (old plural), "commune:Bruz", "Rennes Métropole".

    TerritoryError (a French sentence) for an unknown level, code or name, or an ambiguous name.
    """
    raw = str(text).strip()
    if not raw:
        raise TerritoryError(f"Territoire vide. Exemples : {EXAMPLES}.")
    head, sep, rest = raw.partition(":")
    level = LEVEL_ALIASES.get(_norm(head).replace(" ", "")) if sep else None
    if sep and level is None:
        levels = ", ".join(PLURAL_KEYS)
        raise TerritoryError(f"Niveau de territoire inconnu : « {head.strip()} » dans « {raw} » (connus : {levels}).")
    value = rest.strip() if sep else raw
    if not value:
        raise TerritoryError(f"Territoire incomplet : « {raw} » (exemple : departement:35).")
    if level is None and value.replace(" ", "").isdigit() and len(value.replace(" ", "")) in (5, 9):
        level = "commune" if len(value.replace(" ", "")) == 5 else "epci"
    looks_like_code = bool(value) and all(ch.isdigit() or ch in "ABab" for ch in value.replace(" ", ""))
    if level is not None and looks_like_code:
        code = _clean(value.replace(" ", ""))
        name = place_name(level, code)
        if name is None:
            raise TerritoryError(f"Code de {LEVEL_WORDS[level]} inconnu : {code} (dans « {raw} »). Vérifiez le "
                                 "code INSEE (ou le SIREN d'une intercommunalité), ou donnez le nom.")
        if level == "commune":
            info = commune(code)
            if info is not None and info.code != code:  # an arrondissement or a former commune
                return Place("commune", info.code, info.nom)
        return Place(level, code, name)
    if looks_like_code:
        known = [f"{lvl}:{_clean(value)}" for lvl in LEVELS if place_name(lvl, value.replace(" ", ""))]
        hint = f", par exemple {' ou '.join(known)}" if known else " (aucun territoire n'a ce code)"
        raise TerritoryError(f"Code sans niveau : « {raw} ». Précisez le niveau{hint}.")
    return _by_name_lookup(value, level)


def parse_places(text: str | Iterable[str]) -> list[Place]:
    """Several territories separated by commas, semicolons or new lines (or given as a list), without
    duplicates, in input order."""
    parts = [text] if isinstance(text, str) else list(text)
    out: list[Place] = []
    for part in parts:
        for piece in str(part).replace(";", ",").replace("\n", ",").split(","):
            if piece.strip():
                place = parse_place(piece)
                if place not in out:
                    out.append(place)
    return out


def places_filter(places: Iterable[Place]) -> dict[str, list[str]]:
    """{"departements": ["35"], "epci": [...]}: the mapping of campaign specs and user scopes."""
    out: dict[str, list[str]] = {}
    for place in places:
        out.setdefault(PLURAL_KEYS[place.level], []).append(place.code)
    return out


def places_scope(places: Iterable[Place]) -> list[str]:
    """["departement:35", "epci:243500139"]: the list of partner scopes."""
    return [place.key for place in places]


def parse_territory_text(text: str | Iterable[str]) -> dict[str, list[str]]:
    """A territory typed by a person (CLI option, dashboard form field) as the specs' mapping: the one parser
    of codes and names. TerritoryError with a French sentence when it names nothing or several things."""
    return places_filter(parse_places(text))


def normalise_mapping(data: dict[str, Iterable[str]], *, check_codes: bool = True) -> dict[str, list[str]]:
    """A spec's territory mapping with singular or plural keys, codes or names, as the canonical mapping with
    plural keys and codes. Names are resolved; codes are checked against the reference data unless
    `check_codes` is False (stored specs keep their codes as written; their own check names the unknown ones)."""
    out: dict[str, list[str]] = {}
    for key, values in data.items():
        level = LEVEL_ALIASES.get(_norm(str(key)).replace(" ", ""))
        if level is None:
            raise TerritoryError(f"Niveau de territoire inconnu : « {key} » (connus : {', '.join(PLURAL_KEYS)}).")
        items = [values] if isinstance(values, str | int) else list(values or [])
        for value in items:
            text = str(value).strip()
            if not check_codes and text and all(ch.isdigit() or ch in "ABab" for ch in text):
                codes = out.setdefault(PLURAL_KEYS[level], [])
                if text not in codes:
                    codes.append(text)
                continue
            place = parse_place(f"{level}:{text}")
            codes = out.setdefault(PLURAL_KEYS[place.level], [])
            if place.code not in codes:
                codes.append(place.code)
    return out


def territory_label(data: dict[str, Iterable[str]] | Iterable[str] | None) -> str:
    """A mapping or a list of scopes in words: "Ille-et-Vilaine (département 35), Bruz (commune 35047)"."""
    if not data:
        return "toute la France"
    pairs: list[tuple[str, str]] = []
    if isinstance(data, dict):
        for key, codes in data.items():
            level = LEVEL_ALIASES.get(_norm(str(key)).replace(" ", ""), str(key))
            pairs += [(level, str(c)) for c in codes or []]
    else:
        pairs = [tuple(s.partition(":")[::2]) for s in data]  # type: ignore[misc]
    out = []
    for level, code in pairs:
        level = LEVEL_ALIASES.get(level, level)
        name = place_name(level, code) if level in LEVELS else None
        # An EPCI's code is its SIREN: a person knows it by its name ("Rennes Métropole (intercommunalité)").
        shown = LEVEL_WORDS[level] if level == "epci" else f"{LEVEL_WORDS[level]} {code}"
        out.append(f"{name} ({shown})" if name else f"{level}:{code}")
    return ", ".join(out)


def search_places(query: str, limit: int = 10) -> list[Place]:
    """Completion for a form: the territories whose name starts with (then contains) the words typed, the
    widest levels first, then by name. Empty for fewer than two characters."""
    q = _norm(query)
    if len(q) < 2:
        return []
    starts: list[Place] = []
    contains: list[Place] = []
    for name, places in _by_name().items():
        if name.startswith(q):
            starts += places
        elif q in name:
            contains += places
    rank = {"region": 0, "departement": 1, "epci": 2, "commune": 3}
    key = lambda p: (rank[p.level], len(p.name), p.name)  # noqa: E731
    return (sorted(starts, key=key) + sorted(contains, key=key))[:limit]
