"""Métier taxonomy: NAF rév. 2 sub-classes mapped to the métier families business owners recognise.

Pure and stdlib only. The shipped files ``segments/data/families.csv`` and ``segments/data/naf.csv``
(rebuilt by ``python -m segments.data.build_reference``) are read once and cached.

``segments/data/trades_naf.csv`` is written by hand, one reviewed row per sub-class: how a message names the
business ("votre boulangerie", "une boulangerie") and its trade in a phrase that needs no gender agreement
("les boulangers et boulangères"); catch-all codes (holdings, head offices, "n.c.a.") say "votre entreprise".
Messages never show an INSEE label: they read these words (see ``templates/wording.py``).

``segments/data/categories_juridiques.csv`` is written by hand: the level-I (one digit) and level-II (two digits)
labels of INSEE's nomenclature of legal forms, "Catégories juridiques" (https://www.insee.fr/fr/information/2028129);
Sirene's ``categorieJuridiqueUniteLegale`` is its four-digit level III (5710 is a SAS, under 57 and 5).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

__all__ = [
    "Family",
    "NafEntry",
    "families",
    "naf_entries",
    "normalize_naf",
    "family_for_naf",
    "naf_entry",
    "TradeWording",
    "trade_wordings",
    "trade_wording",
]


@dataclass(frozen=True, slots=True)
class Family:
    """A métier family: slug key, French label, how a message names the trade, and what it covers."""

    family: str
    label: str
    trade_phrase: str
    description: str


@dataclass(frozen=True, slots=True)
class NafEntry:
    """A NAF sub-class (``43.22A``) with its official label, its family and the owner's word for the trade."""

    code: str
    label: str
    family: str
    metier: str


@dataclass(frozen=True, slots=True)
class TradeWording:
    """How a message names a sub-class's business and trade (plain French, never the INSEE label).

    business    the business with a possessive: "votre boulangerie", "votre entreprise de plomberie"
    business_a  the same with an indefinite article: "une boulangerie" (a buyer takes over "une boulangerie")
    trade       the people of the trade, with no gender agreement asked of the reader: "les coiffeurs et
                coiffeuses", "les chauffagistes", "les petites entreprises"
    catch_all   the code says nothing an owner would call a trade (holdings, head offices, "n.c.a.")
    """

    business: str
    business_a: str
    trade: str
    catch_all: bool


# Two digits, optional dot, two digits, one letter: "4322A", "43.22a", " 43.22A ".
_NAF_PATTERN = re.compile(r"^(\d{2})\.?(\d{2})([A-Za-z])$")


def _read_csv(name: str) -> list[dict[str, str]]:
    text = resources.files("segments.data").joinpath(name).read_text(encoding="utf-8")
    return list(csv.DictReader(io.StringIO(text)))


@cache
def families() -> dict[str, Family]:
    """All métier families by slug (``batiment``, ``alimentation`` ...)."""
    return {row["family"]: Family(**row) for row in _read_csv("families.csv")}


@cache
def naf_entries() -> dict[str, NafEntry]:
    """All 732 NAF sub-classes by dotted code (``43.22A``)."""
    return {row["code"]: NafEntry(**row) for row in _read_csv("naf.csv")}


def normalize_naf(code: str) -> str:
    """Canonical NAF sub-class code ``43.22A`` from ``4322A``, ``43.22a`` or ``43.22A``.

    Raises ValueError when the text is not shaped like a sub-class code. It does not check that the code
    exists: use `naf_entry` for that.
    """
    if not isinstance(code, str):
        raise ValueError(f"NAF code must be a string, got {type(code).__name__}")
    match = _NAF_PATTERN.match(code.strip())
    if match is None:
        raise ValueError(f"invalid NAF code {code!r}: expected a sub-class like '43.22A' or '4322A'")
    division, rest, letter = match.groups()
    return f"{division}.{rest}{letter.upper()}"


def naf_entry(code: str) -> NafEntry | None:
    """The sub-class entry for `code` (any accepted spelling), or None if the code is unknown or malformed."""
    return _naf_entry(code) if isinstance(code, str) else None


@lru_cache(maxsize=4096)
def _naf_entry(code: str) -> NafEntry | None:
    # Cached by spelling: a batch of partner events or Sirene rows repeats the same few hundred codes, and parsing
    # one costs more than the rest of its business row.
    try:
        return naf_entries().get(normalize_naf(code))
    except ValueError:
        return None


def family_for_naf(code: str) -> str | None:
    """The family slug of a NAF sub-class, or None for an unknown or malformed code."""
    entry = naf_entry(code)
    return entry.family if entry else None


@cache
def legal_forms() -> dict[str, str]:
    """INSEE's legal-form labels by level-I or level-II code ("1": "Entrepreneur individuel", "54": "Société à
    responsabilité limitée (SARL)"), from ``categories_juridiques.csv``."""
    return {row["code"]: row["label"] for row in _read_csv("categories_juridiques.csv")}


def legal_form_label(code: str | None) -> str | None:
    """The label of a legal-form code of one, two or four digits (a four-digit one by its level II), or None when
    no level of it is known."""
    if not code or len(code) not in (1, 2, 4) or not (code.isascii() and code.isdigit()):
        return None
    return legal_forms().get(code[:2])


@cache
def trade_wordings() -> dict[str, TradeWording]:
    """The reviewed wording of every NAF sub-class, by dotted code (``trades_naf.csv``)."""
    return {row["naf_code"]: TradeWording(business=row["business"], business_a=row["business_a"],
                                          trade=row["trade"], catch_all=bool(row["catch_all"].strip()))
            for row in _read_csv("trades_naf.csv")}


def trade_wording(code: str | None) -> TradeWording | None:
    """The wording of a sub-class (any accepted spelling), or None for an unknown, empty or malformed code."""
    if not code:
        return None
    try:
        return trade_wordings().get(normalize_naf(code))
    except ValueError:
        return None
