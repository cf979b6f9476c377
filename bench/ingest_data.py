"""Generated input files for the ingest benchmarks and tests: Sirene stock rows in the official headers
(establishments, legal units).

Values are drawn from the shipped reference data (real NAF sub-classes and commune codes) with a
mix close to the national stock: mostly single-establishment units, a share of closed units, a few
larger ones, some partial-diffusion units and arrondissement codes. Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import random
from collections.abc import Iterator
from pathlib import Path

from triggers.sirene import ADDRESS_COLUMNS, COLUMNS_48, COLUMNS_54
from triggers.sirene_ul import COLUMNS_UL


def luhn_digit(body: str) -> str:
    """The check digit that makes `body + digit` pass the Luhn test."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def make_siret(siren_body: int, nic_body: int) -> str:
    """A valid SIRET from an 8-digit SIREN body and a 4-digit NIC body."""
    siren = f"{siren_body:08d}"
    siren += luhn_digit(siren)
    nic = f"{nic_body:04d}"
    return siren + nic + luhn_digit(siren + nic)


def _reference() -> tuple[list[str], list[str]]:
    data = Path(__file__).resolve().parents[1] / "segments" / "data"
    with open(data / "naf.csv", encoding="utf-8") as fh:
        nafs = [r["code"] for r in csv.DictReader(fh)]
    with open(data / "communes.csv", encoding="utf-8") as fh:
        communes = [r["code"] for r in csv.DictReader(fh)]
    return nafs, communes


# Share of closed units: the national stock holds about 27 million closed establishments of 43.9 million.
CLOSED_SHARE = 0.6
TRANCHE_WEIGHTS = (("NN", 55), ("", 20), ("00", 5), ("01", 8), ("02", 4), ("03", 3), ("11", 3), ("12", 2))


def sirene_rows(n: int, *, seed: int = 7, columns: tuple[str, ...] = COLUMNS_54) -> Iterator[list[str]]:
    """`n` StockEtablissement rows (lists of strings) in the order of `columns`."""
    rng = random.Random(seed)
    nafs, communes = _reference()
    tranches = [t for t, w in TRANCHE_WEIGHTS for _ in range(w)]
    pos = {name: i for i, name in enumerate(columns)}
    base = dt.date(1990, 1, 1).toordinal()
    span = dt.date(2026, 11, 1).toordinal() - base
    ncol = len(columns)
    for k in range(n):
        row = [""] * ncol
        siret = make_siret(10_000_000 + k, 1)
        row[pos["siren"]] = siret[:9]
        row[pos["nic"]] = siret[9:]
        row[pos["siret"]] = siret
        partial = rng.random() < 0.03
        row[pos["statutDiffusionEtablissement"]] = "P" if partial else "O"
        created = dt.date.fromordinal(base + rng.randrange(span))
        row[pos["dateCreationEtablissement"]] = created.isoformat()
        row[pos["trancheEffectifsEtablissement"]] = tranche = rng.choice(tranches)
        row[pos["anneeEffectifsEtablissement"]] = "2023" if tranche not in ("", "NN") else ""
        row[pos["dateDernierTraitementEtablissement"]] = "2025-03-01T10:12:45"
        row[pos["etablissementSiege"]] = "true"
        row[pos["nombrePeriodesEtablissement"]] = "1"
        commune = rng.choice(communes)
        if partial:
            for name in (*ADDRESS_COLUMNS, "enseigne1Etablissement"):
                row[pos[name]] = "[ND]"
        else:
            row[pos["numeroVoieEtablissement"]] = str(rng.randint(1, 120))
            row[pos["typeVoieEtablissement"]] = rng.choice(("RUE", "AV", "BD", "PL", "CHE"))
            row[pos["libelleVoieEtablissement"]] = rng.choice(
                ("DE LA REPUBLIQUE", "VICTOR HUGO", "DES ECOLES")
            )
            row[pos["codePostalEtablissement"]] = commune[:2] + "000"
            row[pos["libelleCommuneEtablissement"]] = "COMMUNE " + commune
            row[pos["codeCommuneEtablissement"]] = commune
            if rng.random() < 0.3:
                row[pos["enseigne1Etablissement"]] = "ATELIER " + str(k)
        row[pos["dateDebut"]] = created.isoformat()
        row[pos["etatAdministratifEtablissement"]] = "F" if rng.random() < CLOSED_SHARE else "A"
        naf = rng.choice(nafs)
        row[pos["activitePrincipaleEtablissement"]] = naf
        row[pos["nomenclatureActivitePrincipaleEtablissement"]] = "NAFRev2"
        row[pos["caractereEmployeurEtablissement"]] = "O" if tranche not in ("", "NN") else "N"
        if "activitePrincipaleNAF25Etablissement" in pos:
            row[pos["activitePrincipaleNAF25Etablissement"]] = naf
        yield row


def write_sirene(path: Path, n: int, *, seed: int = 7, old_header: bool = False) -> Path:
    """Write a generated stock file (`.gz` when the name says so) and return its path."""
    columns = COLUMNS_48 if old_header else COLUMNS_54
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(sirene_rows(n, seed=seed, columns=columns))
    return path


# Legal units: most carry no category yet (INSEE computes it for active companies only), then PME far ahead.
CATEGORY_WEIGHTS = (("", 55), ("PME", 40), ("ETI", 3), ("GE", 2))


def unite_rows(n: int, *, seed: int = 11, first_siren_body: int = 10_000_000) -> Iterator[list[str]]:
    """`n` StockUniteLegale rows (lists of strings, COLUMNS_UL order), SIRENs in the order `sirene_rows` gives
    them (the same companies from the same `first_siren_body`)."""
    rng = random.Random(seed)
    categories = [c for c, w in CATEGORY_WEIGHTS for _ in range(w)]
    pos = {name: i for i, name in enumerate(COLUMNS_UL)}
    ncol = len(COLUMNS_UL)
    for k in range(n):
        row = [""] * ncol
        body = f"{first_siren_body + k:08d}"
        row[pos["siren"]] = body + luhn_digit(body)
        row[pos["statutDiffusionUniteLegale"]] = "P" if rng.random() < 0.03 else "O"
        row[pos["categorieEntreprise"]] = category = rng.choice(categories)
        row[pos["anneeCategorieEntreprise"]] = "2023" if category else ""
        row[pos["etatAdministratifUniteLegale"]] = "C" if rng.random() < 0.5 else "A"
        row[pos["denominationUniteLegale"]] = f"SOCIETE {k}"
        row[pos["categorieJuridiqueUniteLegale"]] = rng.choice(("1000", "5499", "5710", "9220"))
        yield row


def write_unites(path: Path, n: int, *, seed: int = 11) -> Path:
    """Write a generated StockUniteLegale file (`.gz` when the name says so) and return its path."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS_UL)
        writer.writerows(unite_rows(n, seed=seed))
    return path
