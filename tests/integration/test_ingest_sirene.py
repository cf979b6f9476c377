"""Sirene ingest into the store, on SQLite and PostgreSQL: upserts, snapshot events, privacy, idempotency."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, insert, select

from orchestrator.app.ingest import ingest_bodacc, ingest_sirene
from store.models import Business, Campaign, Enrollment, Message, TriggerEvent
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, row, write
from triggers.report import RejectSink
from triggers.sirene import SireneFormatError

TODAY = dt.date(2026, 11, 27)
RECENT = (TODAY - dt.timedelta(days=10)).isoformat()
B = Business.__table__
E = TriggerEvent.__table__


def businesses(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        return {r.siret: dict(r._mapping) for r in conn.execute(select(B))}


def events(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(
            (r.source, r.external_id, r.type, r.siret, r.status, r.business_id is not None)
            for r in conn.execute(select(E))
        )


def ingest(engine, tmp_path, rows, name="stock.csv", **kw):
    return ingest_sirene(engine, write(tmp_path / name, rows), today=TODAY, **kw, now=dt.datetime.now(dt.UTC))


def test_first_load_keeps_active_tpe_with_family_and_territory(engine, tmp_path):
    report = ingest(
        engine,
        tmp_path,
        [
            row(),  # Rennes plumber, 1-2 employees
            row(
                siret=SIRET_B,
                codeCommuneEtablissement="75111",
                dateCreationEtablissement=RECENT,
                activitePrincipaleEtablissement="56.10A",
                trancheEffectifsEtablissement="NN",
            ),
            row(siret=SIRET_C, trancheEffectifsEtablissement="12"),  # 20-49: not a TPE
            row(siret="44306184100021", etatAdministratifEtablissement="F"),  # closed, never known
        ],
    )
    assert report.to_dict() == {
        "read": 4,
        "accepted": 4,
        "rejected": {},
        "events": {"creation": 1},
        "skipped": {"closed, never known": 1, "not a TPE": 1},
        "stored": 2,
    }
    stored = businesses(engine)
    assert set(stored) == {SIRET_A, SIRET_B}
    a, b = stored[SIRET_A], stored[SIRET_B]
    assert (a["siren"], a["metier_family"], a["naf_code"], a["naf25_code"]) == (
        SIRET_A[:9],
        "batiment",
        "43.22A",
        "43.22Y",
    )
    assert (a["commune_code"], a["departement_code"], a["region_code"]) == ("35238", "35", "53")
    assert a["epci_code"] and a["state"] == "active" and a["head_office"] is True
    assert a["lifecycle_stage"] == "consolidation" and a["creation_date"] == dt.date(2015, 3, 2)
    assert (
        a["street"] == "12 Rue DE NANTES" and a["address_source"] == "sirene" and a["do_not_contact"] is False
    )
    assert b["commune_code"] == "75056" and b["departement_code"] == "75"  # arrondissement -> Paris
    assert b["lifecycle_stage"] == "creation" and b["metier_family"]
    assert events(engine) == [("sirene", f"creation:{SIRET_B}", "creation", SIRET_B, "accepted", True)]


def test_reingesting_the_same_file_changes_nothing(engine, tmp_path):
    rows = [row(), row(siret=SIRET_B, dateCreationEtablissement=RECENT)]
    ingest(engine, tmp_path, rows)
    before = (businesses(engine), events(engine))
    again = ingest(engine, tmp_path, rows)
    assert again.events == {} or sum(again.events.values()) == 0
    assert again.skipped["unchanged"] == 2 and again.stored == 0
    after = (businesses(engine), events(engine))
    for snapshot in (before, after):
        for b in snapshot[0].values():
            b.pop("updated_at")
    assert before == after


def test_second_snapshot_emits_first_hire_closure_and_activity_change(engine, tmp_path):
    ingest(
        engine,
        tmp_path,
        [
            row(trancheEffectifsEtablissement="NN", caractereEmployeurEtablissement="N"),
            row(siret=SIRET_B),
            row(siret=SIRET_C),
        ],
        name="m1.csv",
    )
    report = ingest(
        engine,
        tmp_path,
        [
            row(trancheEffectifsEtablissement="01", caractereEmployeurEtablissement="O"),
            row(siret=SIRET_B, etatAdministratifEtablissement="F", dateDebut="2026-11-01"),
            row(siret=SIRET_C, activitePrincipaleEtablissement="43.21A", dateDebut="2026-10-15"),
        ],
        name="m2.csv",
    )
    assert dict(+report.events) == {"first_hire": 1, "closure": 1, "activity_change": 1}
    got = {e[1] for e in events(engine)}
    assert got == {
        f"first_hire:{SIRET_A}",
        f"closure:{SIRET_B}:2026-11-01",
        f"activity_change:{SIRET_C}:43.21A:2026-10-15",
    }
    stored = businesses(engine)
    assert stored[SIRET_A]["lifecycle_stage"] == "first_hires" and stored[SIRET_A]["employer"] is True
    assert stored[SIRET_B]["state"] == "closed" and stored[SIRET_B]["lifecycle_stage"] == "closed"
    assert stored[SIRET_C]["naf_code"] == "43.21A"


def test_closure_cancels_planned_messages(engine, tmp_path):
    ingest(engine, tmp_path, [row()], name="m1.csv")
    bid = businesses(engine)[SIRET_A]["id"]
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        cid = conn.execute(
            insert(Campaign.__table__).values(
                name="c", owner="o", spec={}, version=1, status="active", created_at=now, updated_at=now
            )
        ).inserted_primary_key[0]
        eid = conn.execute(
            insert(Enrollment.__table__).values(
                campaign_id=cid,
                business_id=bid,
                trigger_key="creation",
                trigger_type="creation",
                arm="treatment",
                campaign_version=1,
                enrolled_at=now,
            )
        ).inserted_primary_key[0]
        conn.execute(
            insert(Message.__table__).values(
                campaign_id=cid,
                enrollment_id=eid,
                business_id=bid,
                step=0,
                channel="email",
                template="t",
                due_at=now,
                status="planned",
                attempts=0,
                context={},
                created_at=now,
            )
        )
    ingest(engine, tmp_path, [row(etatAdministratifEtablissement="F")], name="m2.csv")
    with engine.connect() as conn:
        assert conn.execute(select(Message.__table__.c.status)).scalar() == "cancelled"


def test_partial_diffusion_erases_personal_data_and_is_never_contacted(engine, tmp_path):
    ingest(engine, tmp_path, [row()], name="m1.csv")
    assert businesses(engine)[SIRET_A]["name"] == "PLOMBERIE DU CENTRE"
    masked = dict.fromkeys(
        (
            "enseigne1Etablissement",
            "libelleVoieEtablissement",
            "numeroVoieEtablissement",
            "codeCommuneEtablissement",
            "libelleCommuneEtablissement",
            "codePostalEtablissement",
        ),
        "[ND]",
    )
    ingest(engine, tmp_path, [row(statutDiffusionEtablissement="P", **masked)], name="m2.csv")
    b = businesses(engine)[SIRET_A]
    assert b["do_not_contact"] is True
    assert all(
        b[c] is None
        for c in (
            "name",
            "street",
            "postal_code",
            "city",
            "commune_code",
            "epci_code",
            "departement_code",
            "region_code",
        )
    )
    assert b["naf_code"] == "43.22A"
    # Sticky: a later public row does not make the unit contactable again.
    ingest(engine, tmp_path, [row()], name="m3.csv")
    assert businesses(engine)[SIRET_A]["do_not_contact"] is True


def test_new_partial_unit_gets_no_creation_event(engine, tmp_path):
    ingest(
        engine,
        tmp_path,
        [
            row(
                statutDiffusionEtablissement="P",
                dateCreationEtablissement=RECENT,
                enseigne1Etablissement="[ND]",
            )
        ],
    )
    b = businesses(engine)[SIRET_A]
    assert b["do_not_contact"] is True and b["name"] is None
    assert events(engine) == []


def test_rejects_are_written_with_line_field_and_reason(engine, tmp_path):
    out = tmp_path / "rejects.csv"
    with open(out, "w", encoding="utf-8", newline="") as fh:
        report = ingest(
            engine,
            tmp_path,
            [
                row(siret=SIRET_A[:-1] + "9"),
                row(siret=SIRET_B),
                row(siret=SIRET_C, codeCommuneEtablissement="99999"),
            ],
            rejects=RejectSink(fh),
        )
    assert report.read == 3 and report.accepted == 1 and sum(report.rejected.values()) == 2
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "line;field;reason;raw"
    assert lines[1].startswith("2;siret;invalid SIRET (checksum);")
    assert lines[2].startswith("4;codeCommuneEtablissement;unknown commune '99999';")


def test_truncated_file_changes_nothing(engine, tmp_path):
    ingest(engine, tmp_path, [row()], name="m1.csv")
    before = businesses(engine)
    path = write(tmp_path / "m2.csv", [row(etatAdministratifEtablissement="F"), row(siret=SIRET_B)])
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(SireneFormatError, match="truncated"):
        ingest_sirene(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert businesses(engine) == before and events(engine) == []


def test_pending_bodacc_event_is_resolved_when_the_business_arrives(engine, tmp_path):
    record = {
        "id": "A2026-1",
        "dateparution": (TODAY - dt.timedelta(days=20)).isoformat(),
        "familleavis": "vente",
        "registre": [SIRET_A[:9]],
        "listepersonnes": json.dumps(
            {
                "personne": {
                    "typePersonne": "pm",
                    "denomination": "REPRENEUR SARL",
                    "numeroImmatriculation": {"numeroIdentification": SIRET_A[:9]},
                }
            }
        ),
    }
    path = tmp_path / "bodacc.jsonl"
    path.write_text(json.dumps(record) + "\n")
    report = ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert report.events["takeover"] == 1 and report.events["pending (business not known yet)"] == 1
    assert events(engine) == [("bodacc", "A2026-1", "takeover", None, "pending", False)]
    sirene = ingest(engine, tmp_path, [row(), row(siret=SIRET_A[:9] + "00023", etablissementSiege="false")])
    assert sirene.events["resolved from pending"] == 1
    assert events(engine) == [("bodacc", "A2026-1", "takeover", SIRET_A, "accepted", True)]
    assert businesses(engine)[SIRET_A]["lifecycle_stage"] == "transfer"


def test_parallel_parser_gives_the_same_result(engine, tmp_path):
    rows = [row(), row(siret=SIRET_B, dateCreationEtablissement=RECENT), row(siret=SIRET_A[:-1] + "9")]
    report = ingest(engine, tmp_path, rows, parallel=True, chunk_size=1)
    assert report.to_dict()["read"] == 3 and report.accepted == 2 and report.stored == 2
    assert dict(+report.events) == {"creation": 1}
    stored = businesses(engine)
    assert set(stored) == {SIRET_A, SIRET_B}
    # A first load's rows carry "" for a missing value on SQLite (`SireneStore.empty_is_null`): stored as NULL.
    assert stored[SIRET_A]["categorie_entreprise"] is None and "" not in stored[SIRET_A].values()


def test_repeated_siret_in_an_update_file_last_row_wins(engine, tmp_path):
    report = ingest(engine, tmp_path, [row(enseigne1Etablissement="OLD"), row(enseigne1Etablissement="NEW")])
    assert report.skipped["repeated in the file"] == 1
    assert businesses(engine)[SIRET_A]["name"] == "NEW"


def test_a_first_load_repeating_a_siret_across_chunks_keeps_the_last_row(engine, tmp_path):
    # On PostgreSQL a first load copies its rows straight into the table; the chunk holding the repeat fails the
    # unique SIRET index and goes through the upsert instead, within the same transaction.
    rows = [row(enseigne1Etablissement="OLD"), row(siret=SIRET_B), row(enseigne1Etablissement="NEW")]
    report = ingest(engine, tmp_path, rows, chunk_size=1)
    assert report.stored == 3 and not report.rejected
    stored = businesses(engine)
    assert set(stored) == {SIRET_A, SIRET_B} and stored[SIRET_A]["name"] == "NEW"


def test_store_counts_match_the_report(engine, tmp_path):
    from bench.ingest_data import write_sirene

    path = write_sirene(tmp_path / "gen.csv", 3000)
    report = ingest_sirene(engine, path, today=TODAY, chunk_size=700, now=dt.datetime.now(dt.UTC))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(B)).scalar() == report.stored
        assert conn.execute(select(func.count()).select_from(E)).scalar() == sum(report.events.values())
    assert report.read == 3000 == report.accepted + sum(report.rejected.values())


def test_reopened_establishment_gets_its_age_stage_back(engine, tmp_path):
    ingest(engine, tmp_path, [row()], name="m1.csv")
    ingest(engine, tmp_path, [row(etatAdministratifEtablissement="F", dateDebut="2026-01-01")], name="m2.csv")
    assert businesses(engine)[SIRET_A]["lifecycle_stage"] == "closed"
    ingest(engine, tmp_path, [row(dateDebut="2026-06-01")], name="m3.csv")
    b = businesses(engine)[SIRET_A]
    assert (b["state"], b["lifecycle_stage"]) == ("active", "consolidation")


def test_a_first_load_builds_the_rows_the_compared_path_would(engine, tmp_path):
    # A first load builds its rows in the parser process (triggers.sirene.FirstLoadRows) with constants written by
    # the statement; a load into a store that knows something compares row by row. Same file, same store after.
    from bench.ingest_data import write_sirene
    from store.ingest import ROW_CONSTANTS, SIRENE_COLUMNS
    from triggers.sirene import BUSINESS_ROW

    assert SIRENE_COLUMNS == (*BUSINESS_ROW, *ROW_CONSTANTS)
    path = write_sirene(tmp_path / "stock.csv", 3000)
    now = dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC)

    def state() -> tuple:
        with engine.connect() as conn:
            stored = sorted(tuple(v for k, v in r._mapping.items() if k != "id")
                            for r in conn.execute(select(B).where(B.c.siret != SIRET_C)))
        return stored, [e[:5] for e in events(engine)]

    first = ingest_sirene(engine, path, today=TODAY, now=now, parallel=True, chunk_size=700)
    assert first.stored > 1000 and first.events["creation"] > 0
    built = state()
    with engine.begin() as conn:
        conn.execute(TriggerEvent.__table__.delete())
        conn.execute(B.delete())
    ingest(engine, tmp_path, [row(siret=SIRET_C)], name="other.csv")  # the store now knows one business
    compared = ingest_sirene(engine, path, today=TODAY, now=now, parallel=False, chunk_size=700)
    assert compared.to_dict() == first.to_dict()
    assert state() == built
