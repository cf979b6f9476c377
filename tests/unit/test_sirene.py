"""Sirene StockEtablissement reader: both headers, compression, privacy rules and explained rejects."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import zipfile
from pathlib import Path

import pytest
from stdnum.fr import siret as stdnum_siret

from triggers.model import Reject
from triggers.sirene import (
    COLUMNS_48,
    COLUMNS_53,
    COLUMNS_54,
    SireneFormatError,
    SireneReader,
    is_tpe,
    siret_is_valid,
)

# Valid SIRETs (Luhn on SIREN and SIRET).
SIRET_A = "73282932000074"
SIRET_B = "55210055400013"
SIRET_C = "44306184100047"
SIRET_LA_POSTE = "35600000000048"  # La Poste: SIREN 356000000, SIRET sum checked differently


def row(columns: tuple[str, ...] = COLUMNS_54, **values: str) -> list[str]:
    """A row in the order of `columns`: a public, active, one-person plumber in Rennes by default."""
    base = {
        "siret": SIRET_A,
        "siren": SIRET_A[:9],
        "nic": SIRET_A[9:],
        "statutDiffusionEtablissement": "O",
        "dateCreationEtablissement": "2015-03-02",
        "trancheEffectifsEtablissement": "01",
        "etablissementSiege": "true",
        "numeroVoieEtablissement": "12",
        "typeVoieEtablissement": "RUE",
        "libelleVoieEtablissement": "DE NANTES",
        "codePostalEtablissement": "35000",
        "libelleCommuneEtablissement": "RENNES",
        "codeCommuneEtablissement": "35238",
        "dateDebut": "2015-03-02",
        "etatAdministratifEtablissement": "A",
        "enseigne1Etablissement": "PLOMBERIE DU CENTRE",
        "activitePrincipaleEtablissement": "43.22A",
        "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
        "caractereEmployeurEtablissement": "O",
        "activitePrincipaleNAF25Etablissement": "43.22Y",
    }
    base.update(values)
    return [base.get(c, "") for c in columns]


def write(
    path: Path, rows: list[list[str]], columns: tuple[str, ...] = COLUMNS_54, bom: bool = False
) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    data = ("\ufeff" if bom else "") + buf.getvalue()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data.encode()))
    elif path.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("StockEtablissement_utf8.csv", data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def read_all(path: Path) -> tuple[list, list[Reject], SireneReader]:
    rejects: list[Reject] = []
    reader = SireneReader(path, on_reject=rejects.append)
    return [facts for _line, facts in reader.rows()], rejects, reader


def test_headers_have_the_documented_widths():
    assert (len(COLUMNS_48), len(COLUMNS_53), len(COLUMNS_54)) == (48, 53, 54)
    assert COLUMNS_54[-1] == "activitePrincipaleNAF25Etablissement"
    assert len(set(COLUMNS_54)) == 54


@pytest.mark.parametrize("columns", [COLUMNS_48, COLUMNS_53, COLUMNS_54])
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".zip"])
def test_every_header_and_compression_reads_the_same(tmp_path, columns, suffix):
    path = write(tmp_path / f"stock{suffix}", [row(columns)], columns)
    facts, rejects, reader = read_all(path)
    assert rejects == []
    assert reader.stats.header == len(columns)
    [f] = facts
    assert f.siret == SIRET_A
    assert f.naf_code == "43.22A"
    assert f.naf25_code == ("43.22Y" if columns is COLUMNS_54 else None)
    assert f.commune_code == "35238"
    assert f.name == "PLOMBERIE DU CENTRE"
    assert f.street == "12 Rue DE NANTES"
    assert (f.postal_code, f.city) == ("35000", "RENNES")
    assert f.tranche_effectifs == "01" and f.employer is True
    assert f.creation_date == dt.date(2015, 3, 2) and f.state_since == dt.date(2015, 3, 2)
    assert f.state == "active" and f.do_not_contact is False and f.head_office is True


def test_bom_and_quoted_fields_with_commas_and_newlines(tmp_path):
    path = write(
        tmp_path / "stock.csv",
        [row(enseigne1Etablissement='CHEZ "PAULO", BAR\nTABAC', libelleVoieEtablissement="DU 8 MAI, 1945")],
        bom=True,
    )
    [f], rejects, _ = read_all(path)
    assert rejects == []
    assert f.name == 'CHEZ "PAULO", BAR\nTABAC'
    assert f.street == "12 Rue DU 8 MAI, 1945"


def test_partial_diffusion_unit_keeps_no_personal_data(tmp_path):
    path = write(
        tmp_path / "stock.csv",
        [
            row(
                statutDiffusionEtablissement="P",
                enseigne1Etablissement="[ND]",
                libelleVoieEtablissement="[ND]",
                numeroVoieEtablissement="[ND]",
                codeCommuneEtablissement="[ND]",
                libelleCommuneEtablissement="[ND]",
                codePostalEtablissement="[ND]",
            )
        ],
    )
    [f], rejects, _ = read_all(path)
    assert rejects == []
    assert f.do_not_contact is True
    assert (f.name, f.street, f.postal_code, f.city, f.commune_code) == (None, None, None, None, None)
    assert f.contacts == []
    assert f.naf_code == "43.22A"  # the trade is not personal data and keeps the unit countable


def test_a_public_unit_with_one_masked_value_is_not_contacted_either(tmp_path):
    path = write(tmp_path / "stock.csv", [row(enseigne1Etablissement="[ND]")])
    [f], _, _ = read_all(path)
    assert f.do_not_contact is True
    assert f.name is None and f.street is None and f.commune_code is None


def test_closed_units_and_arrondissements_are_read(tmp_path):
    path = write(
        tmp_path / "stock.csv",
        [
            row(etatAdministratifEtablissement="F", dateDebut="2024-06-30"),
            row(siret=SIRET_B, codeCommuneEtablissement="75111", trancheEffectifsEtablissement=""),
            row(siret=SIRET_C, codeCommuneEtablissement="13201", trancheEffectifsEtablissement="12"),
        ],
    )
    facts, rejects, _ = read_all(path)
    assert rejects == []
    closed, paris, marseille = facts
    assert closed.state == "closed" and closed.state_since == dt.date(2024, 6, 30)
    assert paris.commune_code == "75111" and paris.tranche_effectifs is None and is_tpe(paris)
    assert marseille.commune_code == "13201" and not is_tpe(marseille)


def test_malformed_rows_are_rejected_with_line_field_reason_and_the_file_goes_on(tmp_path):
    bad_siret = SIRET_A[:-1] + "5"
    good = row(siret=SIRET_B)
    path = write(
        tmp_path / "stock.csv",
        [
            row(siret=bad_siret),  # line 2
            row(activitePrincipaleEtablissement="99.99Z"),  # line 3
            row(codeCommuneEtablissement="99999"),  # line 4
            row()[:20],  # line 5
            row(trancheEffectifsEtablissement="77"),  # line 6
            row(dateCreationEtablissement="2015-13-45"),  # line 7
            row(dateDebut="20150302"),  # line 8: ISO "basic" form, not Sirene's
            good,  # line 9
        ],
    )
    facts, rejects, reader = read_all(path)
    assert [f.siret for f in facts] == [SIRET_B]
    assert [(r.line, r.field) for r in rejects] == [
        (2, "siret"),
        (3, "activitePrincipaleEtablissement"),
        (4, "codeCommuneEtablissement"),
        (5, "row"),
        (6, "trancheEffectifsEtablissement"),
        (7, "dateCreationEtablissement"),
        (8, "dateDebut"),
    ]
    assert rejects[0].reason == "invalid SIRET (checksum)"
    assert "99.99Z" in rejects[1].reason and "99999" in rejects[2].reason
    assert rejects[3].reason == "wrong column count (20 instead of 54)"
    assert bad_siret in rejects[0].raw
    assert reader.stats.read == 8 and reader.stats.rejected == 7


def test_closed_rows_with_obsolete_codes_are_kept_without_them(tmp_path):
    path = write(
        tmp_path / "stock.csv",
        [
            row(etatAdministratifEtablissement="F", codeCommuneEtablissement="99999"),
            row(siret=SIRET_B, etatAdministratifEtablissement="F", activitePrincipaleEtablissement="99.99Z"),
            row(siret=SIRET_C, activitePrincipaleEtablissement="00.00Z"),
        ],
    )
    facts, rejects, _ = read_all(path)
    assert rejects == []
    assert facts[0].commune_code is None and facts[0].state == "closed"
    assert facts[1].naf_code is None
    assert facts[2].naf_code is None and facts[2].state == "active"


def test_old_nomenclatures_are_not_family_keys(tmp_path):
    path = write(
        tmp_path / "stock.csv",
        [row(activitePrincipaleEtablissement="52.4X", nomenclatureActivitePrincipaleEtablissement="NAFRev1")],
    )
    [f], rejects, _ = read_all(path)
    assert rejects == [] and f.naf_code is None


def test_line_numbers_count_physical_lines_with_multiline_fields(tmp_path):
    path = write(
        tmp_path / "stock.csv",
        [row(enseigne1Etablissement="A\nB\nC"), row(siret=SIRET_A[:-1] + "0")],
    )
    _, rejects, _ = read_all(path)
    assert [r.line for r in rejects] == [5]


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",
        b"name,age\nbob,12\n",
        b"",
    ],
)
def test_non_csv_or_foreign_files_raise_a_clear_error(tmp_path, content):
    path = tmp_path / "stock.csv"
    path.write_bytes(content)
    with pytest.raises(SireneFormatError) as info:
        list(SireneReader(path).rows())
    assert "stock.csv" in str(info.value)


def test_truncated_plain_file_fails_before_yielding_anything(tmp_path):
    path = write(tmp_path / "stock.csv", [row(), row(siret=SIRET_B)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 60])
    reader = SireneReader(path)
    with pytest.raises(SireneFormatError, match="truncated"):
        next(reader.rows())


def test_truncated_gzip_raises_a_clear_error(tmp_path):
    path = write(tmp_path / "stock.csv.gz", [row(siret=SIRET_B)] * 2000)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SireneFormatError, match="truncated or damaged"):
        list(SireneReader(path).rows())


def test_truncated_zip_raises_a_clear_error(tmp_path):
    path = write(tmp_path / "stock.zip", [row()] * 50)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(SireneFormatError):
        list(SireneReader(path).rows())


def test_fast_siret_check_agrees_with_stdnum():
    import random

    rng = random.Random(3)
    candidates = [
        SIRET_A,
        SIRET_B,
        SIRET_C,
        SIRET_LA_POSTE,
        "35600000000049",
        "1234567890123",
        "abcdefghijklmn",
    ]
    candidates += ["".join(rng.choice("0123456789") for _ in range(14)) for _ in range(3000)]
    for value in candidates:
        assert siret_is_valid(value) == bool(stdnum_siret.is_valid(value)), value


def test_la_poste_establishments_are_valid(tmp_path):
    path = write(tmp_path / "stock.csv", [row(siret=SIRET_LA_POSTE)])
    facts, rejects, _ = read_all(path)
    assert rejects == [] and facts[0].siret == SIRET_LA_POSTE


def test_first_load_mode_counts_out_of_scope_rows_without_returning_them(tmp_path):
    from triggers.sirene import SKIP_CLOSED, SKIP_NOT_TPE, chunked_records

    path = write(
        tmp_path / "stock.csv",
        [
            row(),
            row(siret=SIRET_B, etatAdministratifEtablissement="F"),
            row(siret=SIRET_C, trancheEffectifsEtablissement="12"),
            row(siret=SIRET_A[:-1] + "9"),  # still rejected: the SIRET is checked first
        ],
    )
    [(records, rejects, read, skipped)] = list(chunked_records(path, None, 100, drop_out_of_scope=True))
    assert [r[0] for r in records] == [SIRET_A]
    assert read == 4 and [r.field for r in rejects] == ["siret"]
    assert skipped == {SKIP_CLOSED: 1, SKIP_NOT_TPE: 1}
