"""BODACC, partner files and the regulatory calendar into the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app.ingest import emit_deadlines, import_partner_file, ingest_bodacc, ingest_sirene
from store.admin import add_partner
from store.models import Business, TriggerEvent
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, row, write
from triggers.calendar import Deadline
from triggers.partner_csv import COLUMNS

TODAY = dt.date(2026, 11, 27)
B = Business.__table__
E = TriggerEvent.__table__


def events(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.external_id: dict(r._mapping) for r in conn.execute(select(E))}


def business(engine, siret: str) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(B).where(B.c.siret == siret)).one()._mapping)


def bodacc_record(ident: str, family: str, siren: str, **kw) -> dict:
    rec = {
        "id": ident,
        "dateparution": "2026-11-20",
        "familleavis": family,
        "registre": [siren, f"{siren[:3]} {siren[3:6]} {siren[6:]}"],
    }
    rec.update(kw)
    return rec


def test_bodacc_attaches_known_businesses_and_keeps_unknown_pending(engine, tmp_path):
    ingest_sirene(engine, write(tmp_path / "s.csv", [row(), row(siret=SIRET_B)]), today=TODAY,
                  now=dt.datetime.now(dt.UTC))
    records = [
        bodacc_record(
            "A1",
            "collective",
            SIRET_A[:9],
            jugement=json.dumps(
                {
                    "nature": "Jugement d'ouverture d'une procédure de redressement judiciaire",
                    "date": "2026-11-18",
                }
            ),
        ),
        bodacc_record("A2", "radiation", SIRET_B[:9]),
        bodacc_record("A3", "creation", "443061841"),
        bodacc_record("A4", "dpc", SIRET_A[:9]),
        bodacc_record("A5", "radiation", "123456789"),
    ]
    path = tmp_path / "bodacc.json"
    path.write_text(json.dumps(records))
    report = ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert report.read == 5 and report.accepted == 4 and report.rejected == {"invalid SIREN '123456789'": 1}
    assert (
        report.events["collective_procedure"] == 1
        and report.events["closure"] == 1
        and report.events["creation"] == 1
    )
    assert report.skipped["family dpc"] == 1
    stored = events(engine)
    assert stored["A1"]["status"] == "accepted" and stored["A1"]["siret"] == SIRET_A
    assert stored["A1"]["occurred_on"] == dt.date(2026, 11, 18)
    assert stored["A3"]["status"] == "pending" and stored["A3"]["siren"] == "443061841"
    assert business(engine, SIRET_A)["lifecycle_stage"] == "collective_procedure"
    closed = business(engine, SIRET_B)
    assert closed["state"] == "closed" and closed["lifecycle_stage"] == "closed"

    again = ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert sum(again.events.values()) == 0 and again.skipped["already stored"] == 3
    assert len(events(engine)) == 3

    # The pending creation resolves when Sirene brings its establishment.
    ingest_sirene(engine, write(tmp_path / "s2.csv", [row(siret=SIRET_C)]), today=TODAY, now=dt.datetime.now(dt.UTC))
    assert events(engine)["A3"]["status"] == "accepted" and events(engine)["A3"]["siret"] == SIRET_C


def test_bodacc_csv_export(engine, tmp_path):
    header = "id;dateparution;familleavis;registre;listepersonnes;jugement"
    line = 'C1;2026-11-20;collective;"443061841,443 061 841";;"{""nature"": ""Liquidation judiciaire""}"'
    path = tmp_path / "export.csv"
    path.write_text(header + "\n" + line + "\n", encoding="utf-8")
    report = ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert report.to_dict()["events"] == {"closure": 1, "pending (business not known yet)": 1}


PARTNER_HEADER = ";".join(COLUMNS)


def test_partner_file_import_is_idempotent_and_validated(engine, tmp_path):
    add_partner(engine, "bge", ["creation", "first_hire"], now=dt.datetime.now(dt.UTC))
    path = tmp_path / "bge.csv"
    path.write_text(
        "\ufeff" + PARTNER_HEADER + "\n"
        f"b1;creation;{SIRET_A};02/11/2026;Boulangerie Dupain;47.21Z;35238;contact@dupain.fr;;;;;oui\n"
        f"b2;first_hire;{SIRET_B};2026-11-03;;;;;;;;;\n"
        f"b3;creation;{SIRET_A[:-1]}9;2026-11-03;;;;;;;;;\n",
        encoding="utf-8",
    )
    report = import_partner_file(engine, path, partner="bge", today=dt.date.today(), now=dt.datetime.now(dt.UTC))
    assert (
        report.read == 3
        and report.accepted == 2
        and list(report.rejected) == ["SIRET invalide (clé de contrôle fausse)"]
    )
    assert report.events["creation"] == 1 and report.events["first_hire"] == 1
    stored = events(engine)
    assert stored["b1"]["status"] == "accepted" and stored["b1"]["source"].startswith("partner:")
    assert stored["b2"]["status"] == "pending"
    b = business(engine, SIRET_A)
    assert (b["name"], b["email"], b["metier_family"]) == (
        "Boulangerie Dupain",
        "contact@dupain.fr",
        "alimentation",
    )
    assert b["lifecycle_stage"] == "creation"

    again = import_partner_file(engine, path, partner="bge", today=dt.date.today(), now=dt.datetime.now(dt.UTC))
    assert again.skipped["already stored"] == 2 and sum(again.events.values()) == 0
    # The pending first hire resolves when Sirene brings the SIRET.
    ingest_sirene(engine, write(tmp_path / "s.csv", [row(siret=SIRET_B)]), today=TODAY, now=dt.datetime.now(dt.UTC))
    assert events(engine)["b2"]["status"] == "accepted"


def test_unknown_partner_is_refused(engine, tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("external_id;type;siret;occurred_on\n")
    with pytest.raises(LookupError, match="unknown partner"):
        import_partner_file(engine, path, partner="nobody", today=dt.date.today(), now=dt.datetime.now(dt.UTC))


def test_deadline_reminders_once_per_deadline_offset_and_business(engine, tmp_path):
    ingest_sirene(
        engine,
        write(
            tmp_path / "s.csv",
            [row(), row(siret=SIRET_B, trancheEffectifsEtablissement="NN"), row(siret=SIRET_C)],
        ),
        today=TODAY, now=dt.datetime.now(dt.UTC),
    )
    ingest_sirene(
        engine,
        write(tmp_path / "s2.csv", [row(siret=SIRET_C, etatAdministratifEtablissement="F")]),
        today=TODAY, now=dt.datetime.now(dt.UTC),
    )
    ingest_sirene(  # a unit in partial diffusion is never reminded either
        engine,
        write(tmp_path / "s3.csv", [row(siret="44306184100021", statutDiffusionEtablissement="P")]),
        today=TODAY, now=dt.datetime.now(dt.UTC),
    )
    deadline = Deadline(
        "einvoicing-issuing-2027", dt.date(2027, 9, 1), "t", "s", frozenset({"micro", "pme"}), ("x",)
    )
    run = emit_deadlines(engine, today=dt.date(2026, 12, 10), deadlines=[deadline], chunk_size=1,
                         now=dt.datetime.now(dt.UTC))
    assert [(d.id, o) for d, o in run.due] == [("einvoicing-issuing-2027", 270)]
    assert run.report.events["deadline"] == 2  # the closed establishment is not reminded
    ids = {i for i in events(engine) if i.startswith("deadline:")}
    assert ids == {
        f"deadline:einvoicing-issuing-2027:270:{SIRET_A}",
        f"deadline:einvoicing-issuing-2027:270:{SIRET_B}",
    }
    again = emit_deadlines(engine, today=dt.date(2026, 12, 11), deadlines=[deadline], now=dt.datetime.now(dt.UTC))
    assert again.report.events["deadline"] == 0 and again.report.skipped["already reminded"] == 2
    later = emit_deadlines(engine, today=dt.date(2027, 3, 6), deadlines=[deadline], now=dt.datetime.now(dt.UTC))
    assert later.report.events["deadline"] == 2  # the 180-day reminder is a new one


def test_cli_json_report_and_rejects_file(engine, db_url, tmp_path, monkeypatch):
    from orchestrator.cli.main import app

    monkeypatch.setenv("DECLIC_DATABASE_URL", db_url)
    monkeypatch.setenv("DECLIC_HOME", str(tmp_path))
    path = write(tmp_path / "s.csv", [row(), row(siret=SIRET_B, codeCommuneEtablissement="99999")])
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(
        app, ["ingest", "sirene", str(path), "--json", "--rejects", str(rejects), "--today", "2026-11-27"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["read"] == 2 and out["accepted"] == 1 and out["rejected"] == {"unknown commune '99999'": 1}
    assert rejects.read_text(encoding="utf-8").splitlines()[1].startswith("3;codeCommuneEtablissement;")

    bad = tmp_path / "bad.csv"
    bad.write_text("hello,world\n1,2\n")
    result = CliRunner().invoke(app, ["ingest", "sirene", str(bad)])
    assert result.exit_code == 2 and "StockEtablissement" in result.output

    result = CliRunner().invoke(app, ["deadlines", "--today", "2026-12-10", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["due"][0]["offset_days"] == 270


def test_partner_file_respects_the_partner_scope(engine, tmp_path):
    add_partner(engine, "cma35", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    ingest_sirene(engine, write(tmp_path / "s.csv", [row(siret=SIRET_B, codeCommuneEtablissement="29019")]),
                  today=TODAY, now=dt.datetime.now(dt.UTC))  # fmt: skip
    path = tmp_path / "cma.csv"
    path.write_text(
        "external_id;type;siret;occurred_on;commune_code\n"
        f"ok;creation;{SIRET_A};2026-11-02;35238\n"
        f"wrong-type;first_hire;{SIRET_A};2026-11-02;35238\n"
        f"elsewhere;creation;{SIRET_B};2026-11-02;\n",
        encoding="utf-8",
    )
    report = import_partner_file(engine, path, partner="cma35", today=dt.date.today(), now=dt.datetime.now(dt.UTC))
    assert report.read == 3 and report.accepted == 1
    assert sum(report.rejected.values()) == 2
    assert set(events(engine)) == {"ok"}
