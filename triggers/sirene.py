"""Sirene `StockEtablissement` reader and the snapshot comparison that turns two states into events.

The file is INSEE's monthly stock of establishments (or a daily update file with the same header):
a comma-separated, double-quoted UTF-8 CSV, one establishment (SIRET) a row, plain, `.gz` or `.zip`.
Three headers exist; columns are looked up by name, so all of them read the same:

- 48 columns (the older header): `COLUMNS_48` below.
- 53 columns: adds `dernierNumeroVoieEtablissement`,
  `indiceRepetitionDernierNumeroVoieEtablissement`, `identifiantAdresseEtablissement`,
  `coordonneeLambertAbscisseEtablissement` and `coordonneeLambertOrdonneeEtablissement` to the first
  address block.
- 54 columns (the current header, since December 2025): adds `activitePrincipaleNAF25Etablissement`
  at the end (the NAF 2025 code, which becomes the APE reference on 1 January 2027).

What the reader guarantees:
- streaming: one row in memory at a time (plus the small per-file lookup caches; `chunked_records`
  groups rows in chunks of a chosen size);
- a row with a wrong column count, a bad SIRET checksum (python-stdnum rules, La Poste exception
  included), an unknown tranche, a bad date, an unknown NAF rév. 2 code or an unknown commune is
  rejected with its line, field and reason, and the file goes on (a closed row is read for its SIRET,
  tranche, state and dates only: see CLOSED_ROWS_NOTE);
- a truncated or non-CSV file raises `SireneFormatError` with a plain explanation;
- a unit in partial diffusion (`statutDiffusionEtablissement` = `P`) or, when active, with any `[ND]`
  value keeps no personal data (name, address, commune) and gets `do_not_contact=True` (code de
  commerce R123-232-1); a closed unit keeps none in any case;
- the NAF rév. 2 code stays the key of the métier family; the NAF 2025 code is read when present.

Rows outside the TPE scope (tranche 11 and above) and closed units are still yielded: the ingest
needs them to update businesses it already knows. Only a first load into an empty store
(`drop_out_of_scope`) counts them instead, once their SIRET, tranche and state are checked.
"""

from __future__ import annotations

import abc
import csv
import datetime as dt
import gzip
import io
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import IO, Any, NamedTuple

from stdnum.fr import siret as stdnum_siret

from segments.taxonomy import naf_entry
from segments.territory import commune as commune_info
from triggers.model import BusinessFacts, EventIn, Reject

SOURCE = "sirene"

COLUMNS_48: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
)

COLUMNS_53: tuple[str, ...] = (
    *COLUMNS_48[:14],
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    *COLUMNS_48[14:25],
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    *COLUMNS_48[25:],
)

COLUMNS_54: tuple[str, ...] = (*COLUMNS_53, "activitePrincipaleNAF25Etablissement")

# The establishment's postal address and commune: personal data when the unit is a person's (masked with [ND] in
# partial diffusion).
ADDRESS_COLUMNS = (
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "codeCommuneEtablissement",
)

# Columns the reader needs; a header without them is not a StockEtablissement file.
REQUIRED = (
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "etablissementSiege",
    *ADDRESS_COLUMNS,
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
)

# "00.00Z" is Sirene's placeholder for an activity not coded yet: no family, not an error.
NAF_UNKNOWN = "00.00Z"
# CLOSED_ROWS_NOTE: a closed row matters only for its state (a known establishment that closed). The
# national stock holds about 27 million closed units, many with a commune or NAF code that no longer
# exists: their trade and address are neither checked nor returned (they would be rejected by the
# million, and read for nothing).

TPE_TRANCHES = frozenset({"NN", "00", "01", "02", "03", ""})
TRANCHES = TPE_TRANCHES | frozenset({"11", "12", "21", "22", "31", "32", "41", "42", "51", "52", "53"})
FIRST_HIRE_TRANCHES = frozenset({"01", "02", "03"})
ND = "[ND]"

# Short codes of the most frequent street types, spelled out for a postal address.
STREET_TYPES = {
    "ALL": "Allée",
    "AV": "Avenue",
    "BD": "Boulevard",
    "CHE": "Chemin",
    "CRS": "Cours",
    "IMP": "Impasse",
    "PL": "Place",
    "QUAI": "Quai",
    "RTE": "Route",
    "RUE": "Rue",
    "SQ": "Square",
    "LD": "Lieu-dit",
    "PAS": "Passage",
    "ZA": "ZA",
    "ZI": "ZI",
    "ZAC": "ZAC",
    "CHS": "Chaussée",
    "FG": "Faubourg",
}


class SireneFormatError(ValueError):
    """The file is not a readable StockEtablissement CSV (wrong header, binary, truncated)."""


class Lookups(NamedTuple):
    """Reference checks the reader needs, injected so tests and other callers choose the data."""

    naf_known: Callable[[str], bool]  # "43.22A" -> is it a NAF rév. 2 sub-class?
    commune_known: Callable[[str], bool]  # INSEE code (arrondissements included) -> does it exist?


def default_lookups() -> Lookups:
    """The shipped reference data (segments.taxonomy and segments.territory)."""

    def commune_known(code: str) -> bool:
        try:
            return commune_info(code) is not None
        except (KeyError, ValueError):
            return False

    return Lookups(naf_known=lambda code: naf_entry(code) is not None, commune_known=commune_known)


@dataclass
class ReadStats:
    """What the reader saw; the ingest folds it into its report."""

    read: int = 0
    rejected: int = 0
    header: int = 0  # number of columns of the header (48, 53, 54 or other)
    dropped_closed: int = 0  # with drop_out_of_scope: closed units counted, not returned
    dropped_not_tpe: int = 0  # with drop_out_of_scope: units of 10 employees or more


# --- opening -------------------------------------------------------------------------------------

# What a damaged compressed file raises while it is read (a cut, a flipped byte, a wrong CRC).
DAMAGED = (EOFError, zipfile.BadZipFile, gzip.BadGzipFile, zlib.error, OSError)
# What stops reading a file midway: its CSV, its text encoding or its compressed stream.
READ_ERRORS = (csv.Error, UnicodeDecodeError, *DAMAGED)


def zip_member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """The member of an INSEE archive to read: its first CSV file, else its first file."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    csvs = [m for m in members if m.filename.lower().endswith(".csv")] or members
    if not csvs:
        raise SireneFormatError(f"{name}: the zip archive holds no file")
    return csvs[0]


@contextmanager
def open_text(path: str | os.PathLike[str]) -> Iterator[IO[str]]:
    """Open a plain, `.gz` or `.zip` file as UTF-8 text (BOM tolerated), for csv.reader."""
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            magic = probe.read(4)
    except OSError as exc:
        raise SireneFormatError(f"cannot open {path}: {exc.strerror or exc}") from exc
    if magic[:2] == b"\x1f\x8b":
        stream: IO[str] = gzip.open(path, "rt", encoding="utf-8-sig", newline="")  # noqa: SIM115
        try:
            yield stream
        finally:
            stream.close()
    elif magic == b"PK\x03\x04":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise SireneFormatError(f"{path.name}: damaged or truncated zip archive ({exc})") from exc
        with archive, archive.open(zip_member(archive, path.name)) as raw:
            yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    else:
        _check_plain_tail(path)
        with open(path, encoding="utf-8-sig", newline="", buffering=1 << 20) as stream:
            yield stream


def check_compressed(path: str | os.PathLike[str], error: type[ValueError] = SireneFormatError) -> None:
    """Read a `.zip` or `.gz` file to its end once, checking its CRC, before anything is applied.

    Why: the damage of a compressed file (a cut, a flipped byte) only shows when decompression reaches it,
    and the ingest commits chunk by chunk; without this pass the chunks before the damaged point would be
    applied and the rest not. Decompressing alone costs a small fraction of parsing (0.33 s for a 300,000-row
    stock, 3 % of its first load); plain files are checked by `_check_plain_tail`. Raises `error`
    (SireneFormatError by default) in French, naming the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as probe:
            magic = probe.read(4)
    except OSError as exc:
        raise error(f"impossible d'ouvrir {path}: {exc.strerror or exc}") from exc
    try:
        if magic[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as stream:
                while stream.read(1 << 20):
                    pass
        elif magic == b"PK\x03\x04":
            with zipfile.ZipFile(path) as archive:
                if any(not m.is_dir() for m in archive.infolist()):  # an empty archive is said by open_text
                    with archive.open(zip_member(archive, path.name)) as stream:
                        while stream.read(1 << 20):
                            pass
    except DAMAGED as exc:
        kind = "archive zip endommagée ou tronquée" if magic[:2] == b"PK" else "fichier gzip endommagé ou tronqué"
        raise error(
            f"{path.name}: {kind} ({exc}); rien n'a été importé, "
            "téléchargez le fichier à nouveau"
        ) from exc


def _check_plain_tail(path: Path) -> None:
    # Why: a plain file cut in the middle of a row must fail before anything is stored, and its
    # last line is the only place that shows it. A complete file ends with a newline; a last line
    # without one must still have the header's column count.
    size = path.stat().st_size
    if size == 0:
        raise SireneFormatError(f"{path.name}: empty file")
    with open(path, "rb") as fh:
        first = fh.readline(1 << 16)
        fh.seek(max(0, size - (1 << 16)))
        tail = fh.read()
    if tail.endswith(b"\n"):
        return
    last = tail.rsplit(b"\n", 1)[-1]
    try:
        header = next(csv.reader([first.decode("utf-8-sig").rstrip("\r\n")]))
        row = next(csv.reader([last.decode("utf-8", errors="replace")]))
    except (csv.Error, StopIteration, UnicodeDecodeError):
        return  # not CSV at all: the header check says so with a better message
    if len(header) > 1 and len(row) != len(header) and (len(tail) < size or b"\n" in tail):
        raise SireneFormatError(
            f"{path.name}: truncated file (the last line has {len(row)} of {len(header)} columns "
            "and no line end); nothing was read"
        )


# --- reading -------------------------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """True when an ASCII digit string passes the Luhn test (SIREN, SIRET)."""
    # Why not stdnum for every row: it costs ~12 µs a SIRET, the whole row budget at 100,000 rows/s.
    # Same Luhn sum with bytes.translate (doubled digits from the right) and a C-level sum.
    raw = digits.encode("ascii")
    return (sum(raw[-2::-2].translate(_DOUBLED)) + sum(raw[-1::-2].translate(_SINGLE))) % 10 == 0


_SINGLE = bytes.maketrans(b"0123456789", bytes(range(10)))
_DOUBLED = bytes.maketrans(b"0123456789", bytes((0, 2, 4, 6, 8, 1, 3, 5, 7, 9)))


def siret_is_valid(siret: str) -> bool:
    """True when `siret` is a valid SIRET by python-stdnum's rules (fast path for the common case)."""
    # The fast path only accepts what stdnum accepts (same two checks); the rest goes to stdnum,
    # so the answer is exactly stdnum's, La Poste's exception included.
    if len(siret) == 14 and siret.isascii() and siret.isdigit():
        if luhn_ok(siret[:9]) and luhn_ok(siret):
            return True
    return bool(stdnum_siret.is_valid(siret))


# A record is a plain tuple (cheap to build and to pickle between processes); R_* name its fields.
# Dates stay ISO strings ("2024-05-17", already validated): the store writes them as they are.
R_SIRET, R_NAME, R_NAF, R_NAF25, R_COMMUNE, R_TRANCHE, R_EMPLOYER, R_CREATION, R_STATE, R_DNC = range(10)
R_STREET, R_POSTAL, R_CITY, R_STATE_SINCE, R_HEAD_OFFICE, R_CATEGORY, R_FORM = range(10, 17)
# R_CATEGORY, R_FORM: the legal unit's categorieEntreprise (PME, ETI, GE) and categorieJuridiqueUniteLegale (four
# digits) when the file carries them (the Sirene API feed adds them from the unité légale block); a
# StockEtablissement file does not (see triggers/sirene_ul.py). Either is None when absent, empty, masked or
# unreadable: None never erases a stored value.
CATEGORIES = frozenset({"PME", "ETI", "GE"})
LEGAL_FORM = "categorieJuridiqueUniteLegale"  # the legal form's column, named as in StockUniteLegale
Record = tuple


def facts_from_record(rec: Record) -> BusinessFacts:
    """The BusinessFacts of one record."""
    creation, since = rec[R_CREATION], rec[R_STATE_SINCE]
    return BusinessFacts(
        siret=rec[R_SIRET],
        name=rec[R_NAME],
        naf_code=rec[R_NAF],
        naf25_code=rec[R_NAF25],
        commune_code=rec[R_COMMUNE],
        tranche_effectifs=rec[R_TRANCHE],
        employer=rec[R_EMPLOYER],
        creation_date=dt.date.fromisoformat(creation) if creation else None,
        state=rec[R_STATE],
        do_not_contact=rec[R_DNC],
        street=rec[R_STREET],
        postal_code=rec[R_POSTAL],
        city=rec[R_CITY],
        state_since=dt.date.fromisoformat(since) if since else None,
        head_office=rec[R_HEAD_OFFICE],
        categorie_entreprise=rec[R_CATEGORY] if len(rec) > R_CATEGORY else None,
    )


class StockCsv(abc.ABC):
    """What the readers of INSEE's two Sirene stocks share (establishments here, legal units in
    triggers/sirene_ul.py): the file opened plain, `.gz` or `.zip`; the header read by name; and a file that
    cannot be read (not CSV, not UTF-8, a damaged archive) raised as `SireneFormatError` naming the file and
    the line, in the reader's words (the class attributes below)."""

    EMPTY = "empty file"
    NOT_CSV = "not a CSV text file ({exc})"
    BAD_CSV = "unreadable CSV near line {line} ({exc})"
    NOT_UTF8 = "not UTF-8 text near line {line}"
    BAD_ARCHIVE = "truncated or damaged compressed file near line {line} ({exc})"
    stats: Any  # what the reader saw (each reader's own statistics: ReadStats, UlStats)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def csv_rows(self) -> Iterator[tuple[list[str], Iterator[list[str]]]]:
        """(the header's column names, the csv reader at the first row after it); see `unreadable` for a
        reading error further on."""
        with open_text(self.path) as stream:
            reader = csv.reader(stream, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                raise SireneFormatError(f"{self.path.name}: {self.EMPTY}") from None
            except (csv.Error, UnicodeDecodeError) as exc:
                raise SireneFormatError(f"{self.path.name}: {self.NOT_CSV.format(exc=exc)}") from exc
            except DAMAGED as exc:
                raise self.unreadable(exc, 1) from exc
            yield [h.strip().lstrip("\ufeff") for h in header], reader

    def header(self) -> list[str]:
        """The column names of the file (to tell the two stocks apart)."""
        with self.csv_rows() as (header, _rows):
            return header

    def records(self) -> Iterator[tuple[int, tuple]]:
        """Valid rows as (line number, record tuple), in file order (the reader's `_records`)."""
        with self.csv_rows() as (header, reader):
            yield from self._records(reader, self.columns(header))

    def columns(self, header: list[str] | None = None) -> dict[str, int]:
        """Each column's position, by name, once the header is checked (read from the file when not given)."""
        if header is None:
            header = self.header()
        self.check_header(header)
        self.stats.header = len(header)
        return {name: i for i, name in enumerate(header)}

    @abc.abstractmethod
    def check_header(self, header: list[str]) -> None:
        """Raise `SireneFormatError` when `header` is not this reader's stock."""

    @abc.abstractmethod
    def _records(self, reader: Iterator[list[str]], idx: dict[str, int]) -> Iterator[tuple[int, tuple]]:
        """(line number, record) of each readable row, in the file's order."""

    def unreadable(self, exc: BaseException, line: int) -> SireneFormatError:
        """The error of a file that stops being readable near `line` (`exc` one of READ_ERRORS)."""
        if isinstance(exc, csv.Error):
            words = self.BAD_CSV
        elif isinstance(exc, UnicodeDecodeError):
            words = self.NOT_UTF8
        else:
            words = self.BAD_ARCHIVE
        return SireneFormatError(f"{self.path.name}: {words.format(line=line, exc=exc)}")


class SireneReader(StockCsv):
    """Iterate over a StockEtablissement file: `rows()` yields `(line, BusinessFacts)` for each valid row.

    `records()` yields the same rows as compact tuples (see `R_*`) for the bulk ingest. Rejected rows
    go to `on_reject`; `stats` counts what was read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lookups: Lookups | None = None,
        on_reject: Callable[[Reject], None] | None = None,
        drop_out_of_scope: bool = False,
    ) -> None:
        super().__init__(path)
        self.lookups = lookups or default_lookups()
        self.on_reject = on_reject or (lambda _r: None)
        self.stats = ReadStats()
        # A first load into an empty store needs only active TPE rows: the others are counted once
        # their SIRET, tranche and state are checked, and their other fields are not read at all.
        self.drop_out_of_scope = drop_out_of_scope

    def rows(self) -> Iterator[tuple[int, BusinessFacts]]:
        """Valid rows as (line number, facts), in file order."""
        for line, rec in self.records():
            yield line, facts_from_record(rec)

    def check_header(self, header: list[str]) -> None:
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise SireneFormatError(
                f"{self.path.name}: not a Sirene StockEtablissement file (missing columns: {shown}); "
                f"expected the 48-, 53- or 54-column header"
            )

    def _records(self, reader: Iterator[list[str]], idx: dict[str, int]) -> Iterator[tuple[int, Record]]:
        # Index lookups bound to locals: this loop runs 44 million times on the national stock.
        ncol = len(idx)
        i_siret = idx["siret"]
        i_statut = idx["statutDiffusionEtablissement"]
        i_creation = idx["dateCreationEtablissement"]
        i_tranche = idx["trancheEffectifsEtablissement"]
        i_siege = idx["etablissementSiege"]
        i_num = idx["numeroVoieEtablissement"]
        i_type = idx["typeVoieEtablissement"]
        i_voie = idx["libelleVoieEtablissement"]
        i_cp = idx["codePostalEtablissement"]
        i_city = idx["libelleCommuneEtablissement"]
        i_commune = idx["codeCommuneEtablissement"]
        i_debut = idx["dateDebut"]
        i_etat = idx["etatAdministratifEtablissement"]
        i_ens = idx["enseigne1Etablissement"]
        i_denom = idx["denominationUsuelleEtablissement"]
        i_naf = idx["activitePrincipaleEtablissement"]
        i_nomen = idx["nomenclatureActivitePrincipaleEtablissement"]
        i_emp = idx["caractereEmployeurEtablissement"]
        i_naf25 = idx.get("activitePrincipaleNAF25Etablissement")
        i_cat = idx.get("categorieEntreprise")  # optional: the API feed's unité légale category
        i_form = idx.get(LEGAL_FORM)  # optional: the API feed's unité légale legal form
        categories = CATEGORIES

        naf_cache: dict[str, bool] = {}
        commune_cache: dict[str, bool] = {}
        naf_known, commune_known = self.lookups
        stats = self.stats
        reject = self._reject
        tranches = TRANCHES
        date_from = dt.date.fromisoformat
        luhn = luhn_ok
        is_valid = stdnum_siret.is_valid
        employer_of = {"O": True, "N": False}
        state_of_etat = {"A": "active", "F": "closed"}
        street_types = STREET_TYPES
        drop = self.drop_out_of_scope
        tpe = TPE_TRANCHES

        line = 1
        read = stats.read
        try:
            for row in reader:
                line = reader.line_num  # type: ignore[attr-defined]
                if len(row) != ncol:
                    if not row:
                        continue  # a blank line is not a row
                    read += 1
                    stats.read = read
                    reject(line, "row", f"wrong column count ({len(row)} instead of {ncol})", row)
                    continue
                read += 1
                stats.read = read
                siret = row[i_siret]
                if not (
                    len(siret) == 14
                    and siret.isascii()
                    and siret.isdigit()
                    and luhn(siret[:9])
                    and luhn(siret)
                ):
                    if not is_valid(siret):
                        reject(line, "siret", "invalid SIRET (checksum)", row)
                        continue
                tranche = row[i_tranche]
                if tranche not in tranches:
                    reject(line, "trancheEffectifsEtablissement", f"unknown tranche {tranche!r}", row)
                    continue
                state = state_of_etat.get(row[i_etat])
                if state is None:
                    reject(line, "etatAdministratifEtablissement", f"unknown state {row[i_etat]!r}", row)
                    continue
                if drop:
                    if state != "active":
                        stats.dropped_closed += 1
                        continue
                    if tranche not in tpe:
                        stats.dropped_not_tpe += 1
                        continue
                # Dates stay the file's ISO text once checked (no round trip through a date object).
                creation = row[i_creation]
                if creation == ND:
                    creation = ""
                elif creation:
                    try:
                        if len(creation) != 10:
                            raise ValueError(creation)
                        date_from(creation)
                    except ValueError:
                        reject(line, "dateCreationEtablissement", f"unreadable date {creation!r}", row)
                        continue
                debut = row[i_debut]
                if debut == ND:
                    debut = ""
                elif debut:
                    try:
                        if len(debut) != 10:
                            raise ValueError(debut)
                        date_from(debut)
                    except ValueError:
                        reject(line, "dateDebut", f"unreadable date {debut!r}", row)
                        continue
                category = None
                if i_cat is not None and row[i_cat] in categories:
                    category = row[i_cat]
                form = None
                if i_form is not None:
                    form = row[i_form].strip()
                    if not (len(form) == 4 and form.isascii() and form.isdigit()):
                        form = None  # as the category: empty, [ND] or unreadable is "unknown"
                if state == "closed":
                    # See CLOSED_ROWS_NOTE: a closed row is read for its state and dates only; the
                    # empty fields keep what the store knew (None never erases).
                    yield line, (
                        siret, None, None, None, None, tranche or None, employer_of.get(row[i_emp]),
                        creation or None, state, row[i_statut] != "O", None, None, None, debut or None,
                        row[i_siege] == "true", category, form,
                    )  # fmt: skip
                    continue

                naf = row[i_naf]
                if row[i_nomen] == "NAFRev2" and naf and naf != ND:
                    known = naf_cache.get(naf)
                    if known is None:
                        known = naf_cache[naf] = bool(naf_known(naf))
                    if not known:
                        if naf == NAF_UNKNOWN:
                            naf = None
                        else:
                            reject(line, "activitePrincipaleEtablissement", f"unknown NAF code {naf!r}", row)
                            continue
                else:
                    # Older nomenclatures (NAFRev1, NAF1993, NAP) are not family keys.
                    naf = None

                commune = row[i_commune]
                if commune and commune != ND:
                    known = commune_cache.get(commune)
                    if known is None:
                        known = commune_cache[commune] = bool(commune_known(commune))
                    if not known:
                        reject(line, "codeCommuneEtablissement", f"unknown commune {commune!r}", row)
                        continue
                else:
                    commune = None

                naf25 = row[i_naf25] if i_naf25 is not None else None
                if naf25 == ND or not naf25:
                    naf25 = None
                if row[i_statut] != "O" or ND in row:
                    # Partial diffusion or masked values: keep nothing that names or locates a person.
                    yield (
                        line,
                        (
                            siret,
                            None,
                            naf,
                            naf25,
                            None,
                            tranche or None,
                            employer_of.get(row[i_emp]),
                            creation or None,
                            state,
                            True,
                            None,
                            None,
                            None,
                            debut or None,
                            row[i_siege] == "true",
                            category,
                            form,
                        ),
                    )
                    continue
                kind = row[i_type]
                street = " ".join(filter(None, (row[i_num], street_types.get(kind, kind), row[i_voie])))
                yield (
                    line,
                    (
                        siret,
                        row[i_ens] or row[i_denom] or None,
                        naf,
                        naf25,
                        commune,
                        tranche or None,
                        employer_of.get(row[i_emp]),
                        creation or None,
                        state,
                        False,
                        street or None,
                        row[i_cp] or None,
                        row[i_city] or None,
                        debut or None,
                        row[i_siege] == "true",
                        category,
                        form,
                    ),
                )
        except READ_ERRORS as exc:
            raise self.unreadable(exc, line + 1) from exc

    def _reject(self, line: int, field_name: str, reason: str, row: list[str]) -> None:
        self.stats.rejected += 1
        # Why ",".join and not the raw text: csv.reader does not keep it; a masked row carries no
        # personal data ([ND]) and a public one is public data.
        self.on_reject(Reject(line=line, field=field_name, reason=reason, raw=",".join(row)[:500]))


# Why rows of an empty store are skipped: nothing is known yet, so a closed unit or a larger one
# would only be read to be dropped (see SireneWriter); on a first load the parser drops them itself.
SKIP_CLOSED = "closed, never known"
SKIP_NOT_TPE = "not a TPE"


def chunked_records(
    path: str | os.PathLike[str], lookups: Lookups | None, chunk_size: int, drop_out_of_scope: bool = False
) -> Iterator[tuple[list[Record], list[Reject], int, dict[str, int]]]:
    """(records, rejects, rows read, rows skipped by reason) per chunk of `chunk_size` valid records.

    With `drop_out_of_scope` (a first load into an empty store), closed units and units of 10 employees
    or more are counted under SKIP_CLOSED / SKIP_NOT_TPE instead of being returned.
    """
    rejects: list[Reject] = []
    reader = SireneReader(
        path, lookups=lookups, on_reject=lambda r: rejects.append(r), drop_out_of_scope=drop_out_of_scope
    )
    stats = reader.stats
    records: list[Record] = []
    before = (0, 0, 0)

    def cut() -> tuple[int, dict[str, int]]:
        nonlocal before
        now = (stats.read, stats.dropped_closed, stats.dropped_not_tpe)
        read, closed, not_tpe = (a - b for a, b in zip(now, before, strict=True))
        before = now
        return read, {SKIP_CLOSED: closed, SKIP_NOT_TPE: not_tpe}

    for _line, rec in reader.records():
        records.append(rec)
        if len(records) >= chunk_size:
            read, skipped = cut()
            yield records, rejects, read, skipped
            records = []
            rejects.clear()
    read, skipped = cut()
    yield records, rejects, read, skipped


# --- first loads: business rows built beside the parser ------------------------------------------

# The business row of a first load (`FirstLoadRows`): store.ingest.SIRENE_COLUMNS but its last three (phone_consent,
# created_at, updated_at: the same on every row of a run, the writer's).
BUSINESS_ROW = (
    "siret", "siren", "name", "naf_code", "naf25_code", "metier_family", "commune_code", "epci_code",
    "departement_code", "region_code", "tranche_effectifs", "employer", "creation_date", "state", "do_not_contact",
    "lifecycle_stage", "street", "postal_code", "city", "address_source", "head_office", "categorie_entreprise",
    "categorie_juridique",
)
ROW_STAGE = BUSINESS_ROW.index("lifecycle_stage")
SKIP_REPEATED = "repeated in the file"
_TPE_OR_NONE = TPE_TRANCHES | {None}  # a record's tranche: None when the file had none


class FirstLoadRows:
    """A first load's records (nothing known: no comparison) -> business rows (BUSINESS_ROW), column by column, with
    the stage the age alone gives; and the few records created recently enough to mean an event (the writer compares
    those and may change their stage). Its territory and family look-ups serve the columnar builder too
    (`triggers.sirene_columnar.FirstLoadColumns`, which hands it the chunks it does not cover).

    Why apart from the writer: a national first load builds about 17 million rows and SQLite takes one writer; built
    in the parser process, the rows cost the writer only their unmarshalling. Column by column, the work is done by C
    loops (zip, map over dict lookups) instead of a Python loop body per row. Pure."""

    def __init__(self, today: str, creation_cutoff: str, young_cutoff: str) -> None:
        self.today, self.creation_cutoff, self.young_cutoff = today, creation_cutoff, young_cutoff
        self._family: dict[str | None, str | None] = {None: None}
        self._commune: dict[str | None, tuple] = {None: (None, None, None, None)}

    def territory(self, code: str | None) -> tuple:
        """(commune, EPCI, département, région) of a Sirene commune code (arrondissements read as their commune)."""
        found = self._commune.get(code)
        if found is None:
            info = commune_info(code) if code else None
            found = (info.code, info.epci, info.departement, info.region) if info else (None, None, None, None)
            self._commune[code] = found
        return found

    def family(self, naf: str | None) -> str | None:
        """The métier family of a NAF code."""
        if naf in self._family:
            return self._family[naf]
        entry = naf_entry(naf) if naf else None
        fam = self._family[naf] = entry.family if entry else None
        return fam

    def build(self, records: list[Record]) -> tuple[list[Sequence], list[tuple[int, Record]], dict[str, int]]:
        """(the rows' columns in BUSINESS_ROW order, [(row index, record) of the recent creations], rows left out by
        reason)."""
        skipped = {SKIP_REPEATED: 0, SKIP_CLOSED: 0, SKIP_NOT_TPE: 0}
        # Within a chunk the last row of a SIRET wins (an update file may repeat one).
        by_siret = dict(zip([rec[R_SIRET] for rec in records], records, strict=True))
        if len(by_siret) != len(records):
            skipped[SKIP_REPEATED] = len(records) - len(by_siret)
            records = list(by_siret.values())
        cols = list(zip(*records, strict=True)) if records else [()] * (R_FORM + 1)
        if cols[R_STATE].count("active") != len(records) or not set(cols[R_TRANCHE]) <= _TPE_OR_NONE:
            # Rows the parser of a first load drops already (`drop_out_of_scope`); counted the same way.
            kept = []
            for rec in records:
                if rec[R_STATE] != "active":
                    skipped[SKIP_CLOSED] += 1
                elif (rec[R_TRANCHE] or "") not in TPE_TRANCHES:
                    skipped[SKIP_NOT_TPE] += 1
                else:
                    kept.append(rec)
            records = kept
            cols = list(zip(*records, strict=True)) if records else [()] * (R_FORM + 1)
        if not records:
            return [[] for _ in BUSINESS_ROW], [], skipped
        (sirets, names, nafs, naf25s, communes, tranches, employers, creations, states, dncs, streets, postals,
         cities, _since, heads, categories, forms) = cols
        young, cutoff, today = self.young_cutoff, self.creation_cutoff, self.today
        stages = [("creation" if c >= young else "consolidation") if c else None for c in creations]
        recent = [(i, records[i]) for i, c in enumerate(creations) if c and cutoff <= c <= today and not dncs[i]]
        family = self._family
        for naf in set(nafs).difference(family):
            self.family(naf)
        place = self._commune
        for code in set(communes).difference(place):
            self.territory(code)
        codes, epcis, deps, regions = zip(*map(place.__getitem__, communes), strict=True)
        columns = [
            sirets, [s[:9] for s in sirets], names, nafs, naf25s, list(map(family.__getitem__, nafs)), codes, epcis,
            deps, regions, tranches, employers, creations, states, dncs, stages, streets, postals, cities,
            ["sirene" if s else None for s in streets], heads, categories, forms,
        ]  # fmt: skip
        return columns, recent, skipped


def row_values(columns: Sequence[Sequence]) -> list:
    """Business rows given as their columns, as one list of their values row after row: what the writer of a
    first load inserts (`store.ingest.SireneStore.insert_new`)."""
    return list(chain.from_iterable(zip(*columns, strict=True)))


def built_chunks(
    chunks: Iterator[tuple[Any, list[Reject], int, dict[str, int]]],
    build: Callable[[Any], tuple[Any, list[tuple[int, Record]], dict[str, int]]],
) -> Iterator[tuple[Any, list[tuple[int, Record]], list[Reject], int, dict[str, int]]]:
    """A first load's chunks as (rows, recent records, rejects, rows read, rows left out by reason), the rows as
    `build` makes them of a chunk's records (`FirstLoadRows.build`: columns; the columnar builder: an Arrow batch)."""
    for records, rejects, read, skipped in chunks:
        built, recent, left_out = build(records)
        yield built, recent, rejects, read, {k: skipped.get(k, 0) + left_out.get(k, 0) for k in {*skipped, *left_out}}


def is_tpe(facts: BusinessFacts) -> bool:
    """True when the establishment's head-count tranche is a TPE one (NN, 00, 01-03 or unknown)."""
    return (facts.tranche_effectifs or "") in TPE_TRANCHES


# --- snapshot comparison -------------------------------------------------------------------------


class KnownState(NamedTuple):
    """What the store knew of an establishment before this file."""

    tranche: str | None
    employer: bool | None
    state: str | None  # "active" | "closed"
    naf: str | None
    creation_date: dt.date | None


@dataclass(frozen=True)
class SnapshotRules:
    """Knobs of the comparison: how recent a creation must be to be news."""

    today: dt.date
    creation_window_days: int = 90


def state_of(facts: BusinessFacts) -> KnownState:
    """The comparable state carried by a row."""
    return KnownState(
        facts.tranche_effectifs, facts.employer, facts.state, facts.naf_code, facts.creation_date
    )


def compare(previous: KnownState | None, facts: BusinessFacts, rules: SnapshotRules) -> list[EventIn]:
    """Events that the move from `previous` (None: never seen) to the row `facts` means.

    - `creation`: never seen, or seen without the date, and created within the recent window;
    - `first_hire`: tranche `NN` -> `01`..`03`, or caractereEmployeur `N` -> `O`;
    - `closure`: état `A` -> `F`;
    - `activity_change`: the NAF rév. 2 code changed (both known).
    A unit not to contact only yields `closure` (it stops any outreach already planned). External
    ids are deterministic, so re-reading the same file never creates a second event.
    """
    events: list[EventIn] = []
    siret = facts.siret
    dnc = bool(facts.do_not_contact)

    if (
        not dnc
        and facts.state == "active"
        and facts.creation_date is not None
        and (previous is None or previous.creation_date is None)
        and 0 <= (rules.today - facts.creation_date).days <= rules.creation_window_days
    ):
        events.append(_event("creation", siret, facts.creation_date, facts, {}))

    if previous is None:
        return events

    if (
        not dnc
        and facts.state == "active"
        and (
            (previous.tranche == "NN" and facts.tranche_effectifs in FIRST_HIRE_TRANCHES)
            or (previous.employer is False and facts.employer is True)
        )
    ):
        events.append(
            _event(
                "first_hire",
                siret,
                rules.today,
                facts,
                {
                    "tranche_before": previous.tranche,
                    "tranche": facts.tranche_effectifs,
                    "employer_before": previous.employer,
                    "employer": facts.employer,
                },
            )
        )

    if previous.state == "active" and facts.state == "closed":
        on = facts.state_since or rules.today
        events.append(_event("closure", siret, on, facts, {}, key=on.isoformat()))

    if (
        not dnc
        and facts.state == "active"
        and previous.naf
        and facts.naf_code
        and previous.naf != facts.naf_code
    ):
        on = facts.state_since or rules.today
        events.append(
            _event(
                "activity_change",
                siret,
                on,
                facts,
                {"naf_before": previous.naf, "naf": facts.naf_code},
                key=f"{facts.naf_code}:{on.isoformat()}",
            )
        )
    return events


def _event(
    kind: str, siret: str, on: dt.date, facts: BusinessFacts, payload: dict, key: str | None = None
) -> EventIn:
    external = f"{kind}:{siret}" if key is None else f"{kind}:{siret}:{key}"
    return EventIn(
        source=SOURCE,
        external_id=external,
        type=kind,
        occurred_on=on,
        siret=siret,
        siren=siret[:9],
        business=facts,
        payload={k: v for k, v in payload.items() if v is not None},
    )
