"""Sirene `StockUniteLegale` reader: the legal unit's size category (`categorieEntreprise`) and legal form
(`categorieJuridiqueUniteLegale`) per SIREN.

The e-invoicing dates depend on the company's category, not on the establishment's head count: INSEE's
`categorieEntreprise` (PME, ETI, GE; computed from the head count *and* the turnover or balance sheet of the
whole company) says that a 5-person branch of a large group belongs to a GE, which issues e-invoices from
1 September 2026 (triggers/calendar.py). The establishment stock (`StockEtablissement`, triggers/sirene.py) does
not carry it; the legal-unit stock does, one row a SIREN (about 29 million rows, closed units included).

The file is INSEE's monthly `StockUniteLegale_utf8.zip` (or a plain or `.gz` CSV with its header): comma-separated,
double-quoted UTF-8. Columns are looked up by name; only `siren`, `statutDiffusionUniteLegale` and
`categorieEntreprise` are required (`anneeCategorieEntreprise` and `categorieJuridiqueUniteLegale` are read when
present).

The legal form is INSEE's four-digit *catégorie juridique* (1000 entrepreneur individuel, 54xx SARL, 57xx SAS...;
level-1 and level-2 labels in segments/data/categories_juridiques.csv): segments select on it.

What the reader guarantees, as the establishment reader does:
- streaming: one row in memory at a time; `chunked_unites` groups rows in chunks of a chosen size;
- a row with a wrong column count, a bad SIREN checksum, an unknown category, an unreadable year or a legal form
  that is not four digits is rejected with its line, field and reason, and the file goes on;
- a truncated, damaged or non-CSV file raises `SireneFormatError` with a plain explanation (the ingest checks a
  compressed file to its end before applying anything);
- no personal data is read: only the SIREN, the category, its year and the legal form (a legal unit's name may be a
  person's).

An empty or masked (`[ND]`) category or legal form is "unknown": it never erases a known one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from stdnum.fr import siren as stdnum_siren

from triggers.model import Reject
from triggers.sirene import ND, READ_ERRORS, SireneFormatError, StockCsv, luhn_ok

# The header of INSEE's StockUniteLegale (2025-2026), for reference and test files; read by name.
COLUMNS_UL: tuple[str, ...] = (
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
)

REQUIRED = ("siren", "statutDiffusionUniteLegale", "categorieEntreprise")
CATEGORIES = frozenset({"PME", "ETI", "GE"})

LEGAL_FORM = "categorieJuridiqueUniteLegale"

# A record: (SIREN, category or None, year of the category or None, legal form or None).
UlRecord = tuple


@dataclass
class UlStats:
    """What the reader saw; the ingest folds it into its report."""

    read: int = 0
    rejected: int = 0
    header: int = 0


def header_of(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a Sirene CSV (plain, .gz or .zip), for telling the file kinds apart."""
    return UniteLegaleReader(path).header()


def is_unite_legale_header(header: list[str]) -> bool:
    """True for a StockUniteLegale header (a SIREN and a category, no SIRET)."""
    return "siret" not in header and all(c in header for c in REQUIRED)


# The value rules, shared with the columnar reader (triggers/sirene_columnar.py), which applies them once per distinct
# value: (the value kept, or None for "unknown"; whether the value is acceptable).


def category_of(text: str) -> tuple[str | None, bool]:
    """The category of a `categorieEntreprise` value: PME, ETI, GE; None when empty or masked; refused otherwise."""
    category = text.strip().upper()
    if category in ("", ND):
        return None, True
    return category, category in CATEGORIES


def year_of(text: str) -> tuple[str | None, bool]:
    """The year of an `anneeCategorieEntreprise` value: four digits; None when empty or masked; refused otherwise
    (the value kept is then the stripped text, for the reason)."""
    year = text.strip()
    if year in ("", ND):
        return None, True
    return year, len(year) == 4 and year.isdigit()


def legal_form_of(text: str) -> tuple[str | None, bool]:
    """The legal form of a `categorieJuridiqueUniteLegale` value: INSEE's four-digit code; None when empty or masked;
    refused otherwise (the value kept is then the stripped text, for the reason)."""
    code = text.strip()
    if code in ("", ND):
        return None, True
    return code, len(code) == 4 and code.isascii() and code.isdigit()


def unreadable_legal_form(code: str | None) -> str:
    return f"catégorie juridique illisible {code!r} (quatre chiffres attendus)"


def unknown_category(text: str) -> str:
    return f"catégorie inconnue {text!r} (PME, ETI ou GE attendu)"


def unreadable_year(year: str | None) -> str:
    return f"année illisible {year!r}"


WRONG_WIDTH = "nombre de colonnes faux ({found} au lieu de {expected})"
BAD_SIREN = "SIREN invalide (clé de contrôle)"


class UniteLegaleReader(StockCsv):
    """Iterate over a StockUniteLegale file: `records()` yields `(line, (siren, category, year, legal form))`."""

    EMPTY = "fichier vide"
    NOT_CSV = "ce n'est pas un fichier CSV texte ({exc})"
    BAD_CSV = "CSV illisible vers la ligne {line} ({exc})"
    NOT_UTF8 = "texte non UTF-8 vers la ligne {line}"
    BAD_ARCHIVE = "fichier compressé tronqué ou endommagé vers la ligne {line} ({exc})"

    def __init__(self, path: str | os.PathLike[str], *, on_reject: Callable[[Reject], None] | None = None) -> None:
        super().__init__(path)
        self.on_reject = on_reject or (lambda _r: None)
        self.stats = UlStats()
        self._shown: tuple[int, ...] = (0,)

    def check_header(self, header: list[str]) -> None:
        missing = [c for c in REQUIRED if c not in header]
        if missing or "siret" in header:
            why = f"colonnes manquantes : {', '.join(missing)}" if missing else "il a une colonne siret"
            raise SireneFormatError(f"{self.path.name}: ce n'est pas un fichier Sirene StockUniteLegale ({why})")

    def columns(self, header: list[str] | None = None) -> dict[str, int]:
        idx = super().columns(header)
        self._shown = tuple(i for i in (idx["siren"], idx["categorieEntreprise"], idx.get("anneeCategorieEntreprise"),
                                        idx.get(LEGAL_FORM)) if i is not None)
        return idx

    def _records(self, reader: Iterator[list[str]], idx: dict[str, int]) -> Iterator[tuple[int, UlRecord]]:
        ncol = len(idx)
        i_siren, i_cat = idx["siren"], idx["categorieEntreprise"]
        i_year = idx.get("anneeCategorieEntreprise")
        i_form = idx.get(LEGAL_FORM)
        stats, reject = self.stats, self._reject
        line = 1
        try:
            for row in reader:
                line = reader.line_num  # type: ignore[attr-defined]
                if not row:
                    continue  # a blank line is not a row
                stats.read += 1
                if len(row) != ncol:
                    reject(line, "row", WRONG_WIDTH.format(found=len(row), expected=ncol), row)
                    continue
                siren = row[i_siren]
                if not (len(siren) == 9 and siren.isascii() and siren.isdigit() and luhn_ok(siren)):
                    if not stdnum_siren.is_valid(siren):
                        reject(line, "siren", BAD_SIREN, row)
                        continue
                category, ok = category_of(row[i_cat])
                if not ok:
                    reject(line, "categorieEntreprise", unknown_category(row[i_cat]), row)
                    continue
                year, ok = year_of(row[i_year] if i_year is not None else "")
                if not ok:
                    reject(line, "anneeCategorieEntreprise", unreadable_year(year), row)
                    continue
                form, ok = legal_form_of(row[i_form] if i_form is not None else "")
                if not ok:
                    reject(line, LEGAL_FORM, unreadable_legal_form(form), row)
                    continue
                yield line, (siren, category, year, form)
        except READ_ERRORS as exc:
            raise self.unreadable(exc, line + 1) from exc

    def _reject(self, line: int, field_name: str, reason: str, row: list[str]) -> None:
        self.stats.rejected += 1
        self.on_reject(self.rejected(line, field_name, reason, row))

    def rejected(self, line: int, field_name: str, reason: str, row: list[str]) -> Reject:
        """The reject of a row: only its SIREN, category, year and legal form are kept (the other columns may name a
        person)."""
        kept = [row[i] for i in self._shown if i < len(row)]
        return Reject(line=line, field=field_name, reason=reason, raw=",".join(kept)[:500])


def chunked_unites(
    path: str | os.PathLike[str], chunk_size: int
) -> Iterator[tuple[list[UlRecord], list[Reject], int]]:
    """(records, rejects, rows read) per chunk of `chunk_size` valid records."""
    rejects: list[Reject] = []
    reader = UniteLegaleReader(path, on_reject=rejects.append)
    records: list[UlRecord] = []
    before = 0
    for _line, rec in reader.records():
        records.append(rec)
        if len(records) >= chunk_size:
            read, before = reader.stats.read - before, reader.stats.read
            yield records, rejects, read
            records, rejects = [], []
            reader.on_reject = rejects.append
    yield records, rejects, reader.stats.read - before
