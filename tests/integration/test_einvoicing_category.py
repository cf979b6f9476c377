"""The company category (StockUniteLegale, or the Sirene API's unité légale) decides the e-invoicing reminders and
their dates (issue 13, point 7), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app.ingest import emit_deadlines, ingest_sirene, ingest_sirene_ul
from store.models import Business, TriggerEvent
from store.planning import deadline_of
from templates.preview import sample_context
from templates.render import library
from tests.unit.test_einvoicing_category import ul_row, write_ul
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, row, write
from triggers.feeds.sirene_api import COLUMNS, flat_row
from triggers.sirene import SireneFormatError, luhn_ok

TODAY = dt.date(2025, 12, 5)  # 270 days before 1 September 2026
B, E = Business.__table__, TriggerEvent.__table__


def categories(engine) -> dict[str, str | None]:
    with engine.connect() as conn:
        return dict(conn.execute(select(B.c.siret, B.c.categorie_entreprise)).all())


def deadline_payloads(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(select(E.c.siret, E.c.payload).where(E.c.type == "deadline")).all()
    return {siret: (p if isinstance(p, dict) else json.loads(p)) for siret, p in rows}


def sibling_of(siret: str) -> str:
    """Another valid SIRET of the same SIREN (a second establishment of the company)."""
    for nic in range(int(siret[9:]) + 1, 99999):
        candidate = f"{siret[:9]}{nic:05d}"
        if luhn_ok(candidate):
            return candidate
    raise AssertionError("no sibling")


def test_legal_units_set_the_category_and_the_deadline_dates(engine, tmp_path):
    # Three one- or two-person establishments: a branch of a large group, a PME, and one INSEE gives no category.
    ingest_sirene(engine, write(tmp_path / "etab.csv", [row(), row(siret=SIRET_B), row(siret=SIRET_C)]),
                  today=TODAY, now=dt.datetime.now(dt.UTC))  # fmt: skip
    ul = write_ul(tmp_path / "StockUniteLegale_utf8.zip", [
        ul_row(),  # SIRET_A's company: GE
        ul_row(siren=SIRET_B[:9], categorieEntreprise="PME"),
        ul_row(siren=SIRET_C[:9], categorieEntreprise=""),
        ul_row(siren="552081317", categorieEntreprise="ETI"),  # a company with no establishment in the store
        ul_row(siren="123456789"),  # rejected: checksum
    ])
    # `declic ingest sirene` tells the file kind by its header.
    report = ingest_sirene(engine, ul, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert report.read == 5 and report.accepted == 4 and report.rejected == {"SIREN invalide (clé de contrôle)": 1}
    assert report.stored == 2
    assert report.skipped == {"no category (INSEE)": 1, "SIREN not in the store": 1}
    assert categories(engine) == {SIRET_A: "GE", SIRET_B: "PME", SIRET_C: None}

    again = ingest_sirene_ul(engine, ul, now=dt.datetime.now(dt.UTC))  # idempotent: nothing to write
    assert again.stored == 0 and again.skipped["unchanged"] == 2

    # A new branch of the large group, arriving before the next legal-unit file, takes its company's category.
    branch = sibling_of(SIRET_A)
    ingest_sirene(engine, write(tmp_path / "etab2.csv", [row(siret=branch, nic=branch[9:])]), today=TODAY,
                  now=dt.datetime.now(dt.UTC))
    assert categories(engine)[branch] == "GE"

    run = emit_deadlines(engine, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert {d.id for d, _ in run.due} == {"einvoicing-reception-2026", "einvoicing-issuing-large-2026"}
    payloads = deadline_payloads(engine)
    assert set(payloads) == {SIRET_A, branch, SIRET_B, SIRET_C}  # one reminder each
    for siret in (SIRET_A, branch):
        assert payloads[siret]["deadline"] == "einvoicing-issuing-large-2026"
        assert payloads[siret]["receive_date"] == payloads[siret]["issue_date"] == "2026-09-01"
    for siret in (SIRET_B, SIRET_C):  # PME, and unknown: the PME/micro dates
        assert payloads[siret]["deadline"] == "einvoicing-reception-2026"
        assert (payloads[siret]["receive_date"], payloads[siret]["issue_date"]) == ("2026-09-01", "2027-09-01")

    # What the template receives (the planner's deadline context) and what it says.
    lib = library()
    for siret, both in ((SIRET_A, False), (SIRET_B, True), (SIRET_C, True)):
        context = sample_context("batiment", "deadline", deadline=deadline_of("deadline", payloads[siret]))
        assert context["deadline"]["receive_date"] == "2026-09-01"
        body = lib.render("email/deadline/default.j2", context).body
        assert "1er septembre 2026" in body and ("1er septembre 2027" in body) is both


def test_sirene_api_rows_carry_the_company_category(engine, tmp_path):
    item = {"siren": SIRET_C[:9], "nic": SIRET_C[9:], "siret": SIRET_C, "statutDiffusionEtablissement": "O",
            "dateCreationEtablissement": "2015-03-02", "trancheEffectifsEtablissement": "01",
            "etablissementSiege": True,
            "uniteLegale": {"categorieEntreprise": "ETI", "denominationUniteLegale": "GROUPE MOYEN"},
            "adresseEtablissement": {"numeroVoieEtablissement": "3", "typeVoieEtablissement": "RUE",
                                     "libelleVoieEtablissement": "DE BREST", "codePostalEtablissement": "35000",
                                     "libelleCommuneEtablissement": "RENNES", "codeCommuneEtablissement": "35238"},
            "periodesEtablissement": [{"dateFin": None, "dateDebut": "2015-03-02",
                                       "etatAdministratifEtablissement": "A",
                                       "enseigne1Etablissement": "AGENCE DE RENNES",
                                       "activitePrincipaleEtablissement": "43.22A",
                                       "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
                                       "caractereEmployeurEtablissement": "O"}]}
    flat = flat_row(item)
    assert flat["categorieEntreprise"] == "ETI"
    path = tmp_path / "api.csv"
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writeheader()
        writer.writerow(flat)
    ingest_sirene(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert categories(engine) == {SIRET_C: "ETI"}
    emit_deadlines(engine, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert deadline_payloads(engine)[SIRET_C]["deadline"] == "einvoicing-issuing-large-2026"


def test_a_damaged_legal_unit_archive_applies_nothing(engine, tmp_path):
    ingest_sirene(engine, write(tmp_path / "etab.csv", [row()]), today=TODAY, now=dt.datetime.now(dt.UTC))
    rows = [ul_row()] + [ul_row(siren="552081317", categorieEntreprise="ETI")] * 3000
    good = write_ul(tmp_path / "StockUniteLegale_utf8.zip", rows)
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3])
    with pytest.raises(SireneFormatError, match="rien n'a été importé"):
        ingest_sirene_ul(engine, cut, chunk_size=1, now=dt.datetime.now(dt.UTC))
    assert categories(engine) == {SIRET_A: None}


def test_cli_ingest_sirene_ul(engine, db_url, tmp_path, monkeypatch):
    from orchestrator.cli.main import app

    monkeypatch.setenv("DECLIC_DATABASE_URL", db_url)
    monkeypatch.setenv("DECLIC_HOME", str(tmp_path))
    ingest_sirene(engine, write(tmp_path / "etab.csv", [row()]), today=TODAY, now=dt.datetime.now(dt.UTC))
    ul = write_ul(tmp_path / "ul.csv", [ul_row(), ul_row(siren="552100554", categorieEntreprise="XXL")])
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(app, ["ingest", "sirene-ul", str(ul), "--json", "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["read"] == 2 and out["accepted"] == 1 and out["stored"] == 1
    assert rejects.read_text(encoding="utf-8").splitlines()[1].startswith("3;categorieEntreprise;")
    assert categories(engine) == {SIRET_A: "GE"}

    etab = write(tmp_path / "etab2.csv", [row()])
    result = CliRunner().invoke(app, ["ingest", "sirene-ul", str(etab)])
    assert result.exit_code == 2 and "StockUniteLegale" in result.output
