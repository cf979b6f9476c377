"""A BODACC closure sticks until Sirene lists the establishment active in a period that began after it."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select

from orchestrator.app.ingest import STILL_CLOSED, ingest_bodacc, ingest_sirene
from store.models import Business, TriggerEvent
from tests.unit.test_sirene import SIRET_A, row, write

TODAY = dt.date(2026, 11, 27)
CLOSED_ON = dt.date(2026, 10, 1)
B = Business.__table__
E = TriggerEvent.__table__


def business(engine) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(B).where(B.c.siret == SIRET_A)).one()._mapping)


def event_types(engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted((r.source, r.type) for r in conn.execute(select(E)))


def sirene(engine, tmp_path, name, **values):
    return ingest_sirene(engine, write(tmp_path / name, [row(**values)]), today=TODAY, now=dt.datetime.now(dt.UTC))


def radiation(engine, tmp_path):
    record = {"id": "B2026-9", "dateparution": CLOSED_ON.isoformat(), "familleavis": "radiation",
              "registre": [SIRET_A[:9]]}
    path = tmp_path / "bodacc.jsonl"
    path.write_text(json.dumps(record) + "\n")
    report = ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert report.events["closure"] == 1


def test_bodacc_closure_sticks_until_sirene_shows_a_newer_active_period(engine, tmp_path):
    sirene(engine, tmp_path, "m1.csv", trancheEffectifsEtablissement="NN", caractereEmployeurEtablissement="N")
    radiation(engine, tmp_path)
    assert (business(engine)["state"], business(engine)["lifecycle_stage"]) == ("closed", "closed")

    # Sirene has not caught up: still active, in the period that began in 2015; new trade and a hire.
    stale = sirene(engine, tmp_path, "m2.csv", activitePrincipaleEtablissement="43.21A")
    assert dict(+stale.events) == {} and stale.skipped[STILL_CLOSED] == 1
    assert (business(engine)["state"], business(engine)["lifecycle_stage"]) == ("closed", "closed")
    assert event_types(engine) == [("bodacc", "closure")]

    # A period starting on the closure day is not newer than it.
    same_day = sirene(engine, tmp_path, "m3.csv", dateDebut=CLOSED_ON.isoformat())
    assert same_day.skipped[STILL_CLOSED] == 1 and business(engine)["state"] == "closed"

    # A period that began after the closure: a real reopening.
    later = sirene(engine, tmp_path, "m4.csv", dateDebut="2026-11-02", activitePrincipaleEtablissement="43.21A")
    assert later.skipped[STILL_CLOSED] == 0
    assert (business(engine)["state"], business(engine)["lifecycle_stage"]) == ("active", "consolidation")


def test_stale_active_row_does_not_reopen_after_a_sirene_closure_either(engine, tmp_path):
    sirene(engine, tmp_path, "m1.csv")
    sirene(engine, tmp_path, "m2.csv", etatAdministratifEtablissement="F", dateDebut="2026-09-15")
    assert business(engine)["state"] == "closed"
    # An older file read again (its period began in 2015) leaves the closure in place.
    assert sirene(engine, tmp_path, "m1-again.csv").skipped[STILL_CLOSED] == 1
    assert business(engine)["state"] == "closed"
