"""An ingest killed with SIGKILL and run again ends in the same state as one uninterrupted run."""

from __future__ import annotations

import csv
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bench.ingest_data import make_siret, sirene_rows
from orchestrator.app.ingest import ingest_bodacc, ingest_sirene
from store.models import Business, TriggerEvent
from triggers.sirene import COLUMNS_54

TODAY = dt.date(2026, 11, 27)
B = Business.__table__
E = TriggerEvent.__table__
ROWS = 60_000
POS = {name: i for i, name in enumerate(COLUMNS_54)}

RUNNER = """
import datetime as dt, sys
from store.db import get_engine
from orchestrator.app.ingest import ingest_sirene
if __name__ == "__main__":
    engine = get_engine(sys.argv[1])
    ingest_sirene(engine, sys.argv[2], today=dt.date(2026, 11, 27), now=dt.datetime.now(dt.UTC), chunk_size=400,
                  parallel=True)
"""


def write_rows(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(COLUMNS_54)
        writer.writerows(rows)
    return path


def second_month(rows):
    """The next monthly stock: some first hires, closures and activity changes."""
    for i, r in enumerate(rows):
        r = list(r)
        if r[POS["etatAdministratifEtablissement"]] == "A":
            if i % 7 == 0 and r[POS["trancheEffectifsEtablissement"]] == "NN":
                r[POS["trancheEffectifsEtablissement"]] = "01"
                r[POS["caractereEmployeurEtablissement"]] = "O"
            elif i % 11 == 0:
                r[POS["etatAdministratifEtablissement"]] = "F"
                r[POS["dateDebut"]] = "2026-11-01"
            elif i % 13 == 0:
                r[POS["activitePrincipaleEtablissement"]] = "47.11B"
                r[POS["dateDebut"]] = "2026-10-15"
        yield r


def state(engine) -> tuple:
    with engine.connect() as conn:
        businesses = sorted(
            tuple(v for k, v in r._mapping.items() if k not in ("id", "created_at", "updated_at"))
            for r in conn.execute(select(B))
        )
        ids = {r.id: r.siret for r in conn.execute(select(B.c.id, B.c.siret))}
        events = sorted(
            (r.source, r.external_id, r.type, r.siret, ids.get(r.business_id), r.occurred_on, r.status)
            for r in conn.execute(select(E))
        )
    return businesses, events


def clear(engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(E))
        conn.execute(delete(B))


def kill_when(proc: subprocess.Popen, engine, count, *, more_than: int) -> None:
    """SIGKILL the ingest child as soon as the `count` query passes `more_than` rows (mid-ingest)."""
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                if conn.execute(count).scalar() > more_than:
                    break
            assert proc.poll() is None, "the ingest ended before it could be killed"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)


@pytest.mark.slow
def test_sigkill_then_rerun_equals_one_run(engine, db_url, tmp_path):
    first = list(sirene_rows(ROWS, seed=11))
    month1 = write_rows(tmp_path / "m1.csv", first)
    month2 = write_rows(tmp_path / "m2.csv", second_month(first))

    ingest_sirene(engine, month1, today=TODAY, now=dt.datetime.now(dt.UTC))
    ingest_sirene(engine, month2, today=TODAY, now=dt.datetime.now(dt.UTC))
    expected = state(engine)
    assert len(expected[1]) > 1000  # the second month carries many events

    clear(engine)
    ingest_sirene(engine, month1, today=TODAY, now=dt.datetime.now(dt.UTC))
    baseline = len(state(engine)[1])
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", RUNNER, db_url, str(month2)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    kill_when(proc, engine, select(func.count()).select_from(E), more_than=baseline + 50)
    partial = state(engine)
    assert baseline < len(partial[1]) < len(expected[1]), "the kill did not land mid-ingest"

    report = ingest_sirene(engine, month2, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert report.read == ROWS
    assert state(engine) == expected


BODACC_RUNNER = """
import datetime as dt, sys
from store.db import get_engine
from orchestrator.app.ingest import ingest_bodacc
if __name__ == "__main__":
    ingest_bodacc(get_engine(sys.argv[1]), sys.argv[2], today=dt.date(2026, 11, 27), now=dt.datetime.now(dt.UTC),
                  chunk_size=200)
"""


@pytest.mark.slow
def test_bodacc_sigkill_then_rerun_equals_one_run(engine, db_url, tmp_path):
    from bench.bench_ingest import bodacc_file

    # Establishments for the first 3,000 SIRENs of the BODACC file: those events attach, the rest wait.
    known = []
    for k, r in enumerate(sirene_rows(3000, seed=5)):
        siret = make_siret(20_000_000 + k, 1)
        r[POS["siren"]], r[POS["nic"]], r[POS["siret"]] = siret[:9], siret[9:], siret
        r[POS["etatAdministratifEtablissement"]] = "A"
        r[POS["trancheEffectifsEtablissement"]] = "NN"
        known.append(r)
    ingest_sirene(engine, write_rows(tmp_path / "s.csv", known), today=TODAY, now=dt.datetime.now(dt.UTC))
    path = bodacc_file(tmp_path / "bodacc.jsonl", 40_000)
    ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    expected = state(engine)
    expected_bodacc = len([e for e in expected[1] if e[0] == "bodacc"])
    assert any(e[0] == "bodacc" and e[6] == "accepted" for e in expected[1])

    clear(engine)
    ingest_sirene(engine, tmp_path / "s.csv", today=TODAY, now=dt.datetime.now(dt.UTC))
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-c", BODACC_RUNNER, db_url, str(path)], cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)})  # fmt: skip
    kill_when(proc, engine, select(func.count()).select_from(E).where(E.c.source == "bodacc"), more_than=100)
    assert 0 < len([e for e in state(engine)[1] if e[0] == "bodacc"]) < expected_bodacc

    ingest_bodacc(engine, path, today=TODAY, now=dt.datetime.now(dt.UTC))
    assert state(engine) == expected
