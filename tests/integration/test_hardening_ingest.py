"""Issue 14, finding 15: a damaged compressed file applies nothing, and a database that goes away ends
`declic ingest` with a French sentence (where it stopped, what to do), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import shutil
import socket
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from bench.ingest_data import write_sirene
from orchestrator.app.ingest import ingest_sirene
from orchestrator.cli.main import app as cli
from store.ingest import SireneStore
from store.models import Business, TriggerEvent
from triggers.sirene import SireneFormatError

TODAY = dt.date(2026, 11, 28)
BODACC_RECORD = {
    "id": "A2026RAD0001",
    "dateparution": "2026-11-20",
    "familleavis": "radiation",
    "familleavis_lib": "Radiation",
    "typeavis": "annonce",
    "numerodepartement": "35",
    "registre": ["894670793", "894 670 793"],
    "commercant": "BOULANGERIE DUPAIN SARL",
}


def state(engine) -> tuple:
    b, e = Business.__table__, TriggerEvent.__table__
    with engine.connect() as conn:
        rows = conn.execute(select(b.c.siret, b.c.name, b.c.state, b.c.commune_code).order_by(b.c.siret)).all()
        events = conn.execute(select(func.count()).select_from(e)).scalar()
    return [tuple(r) for r in rows], events


def damaged_zip(plain: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(plain, "StockEtablissement_utf8.csv")
    data = bytearray(dest.read_bytes())
    middle = len(data) * 2 // 3  # inside the compressed data, well past the first chunks
    data[middle : middle + 64] = bytes(64)
    dest.write_bytes(bytes(data))
    return dest


def cut_gzip(plain: Path, dest: Path) -> Path:
    with open(plain, "rb") as src, gzip.open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
    data = dest.read_bytes()
    dest.write_bytes(data[: len(data) * 2 // 3])
    return dest


@pytest.fixture
def known_store(engine, tmp_path):
    """A store that already knows 200 businesses (the first rows of the bigger file below)."""
    ingest_sirene(engine, write_sirene(tmp_path / "first.csv", 200), today=TODAY, parallel=False,
                  now=dt.datetime.now(dt.UTC))
    before = state(engine)
    assert len(before[0]) > 50
    return before


@pytest.mark.parametrize("damage", [damaged_zip, cut_gzip], ids=["zip-damaged", "gzip-cut"])
def test_a_damaged_compressed_file_changes_nothing(engine, tmp_path, known_store, damage):
    plain = write_sirene(tmp_path / "stock.csv", 3000)
    suffix = ".zip" if damage is damaged_zip else ".csv.gz"
    bad = damage(plain, tmp_path / f"stock{suffix}")
    with pytest.raises(SireneFormatError) as raised:
        # Small chunks: without the check, the chunks before the damaged point would be committed.
        ingest_sirene(engine, bad, today=TODAY, chunk_size=200, parallel=False, now=dt.datetime.now(dt.UTC))
    assert state(engine) == known_store
    assert "rien n'a été importé" in str(raised.value)


def test_the_command_says_the_damage_in_french(env_settings, engine, tmp_path, known_store):
    bad = damaged_zip(write_sirene(tmp_path / "stock.csv", 3000), tmp_path / "stock.zip")
    result = CliRunner().invoke(cli, ["ingest", "sirene", str(bad), "--today", TODAY.isoformat()])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "stock.zip: archive zip endommagée ou tronquée" in said
    assert "rien n'a été importé, téléchargez le fichier à nouveau" in said
    assert state(engine) == known_store


def test_a_sound_zip_is_still_read(engine, tmp_path):
    plain = write_sirene(tmp_path / "stock.csv", 500)
    with zipfile.ZipFile(tmp_path / "stock.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(plain, "StockEtablissement_utf8.csv")
    report = ingest_sirene(engine, tmp_path / "stock.zip", today=TODAY, chunk_size=100, parallel=False,
                           now=dt.datetime.now(dt.UTC))
    assert report.read == 500 and report.stored > 0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nobody listens once it is closed


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_an_unreachable_database_is_said_in_french(monkeypatch, tmp_path, kind):
    url = (
        f"sqlite:///{tmp_path / 'missing-folder' / 'declic.db'}"
        if kind == "sqlite"
        else f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test"
    )
    monkeypatch.setenv("DECLIC_DATABASE_URL", url)
    monkeypatch.setenv("DECLIC_HOME", str(tmp_path))
    plain = write_sirene(tmp_path / "stock.csv", 50)
    bodacc = tmp_path / "bodacc.jsonl"
    bodacc.write_text(json.dumps(BODACC_RECORD) + "\n", encoding="utf-8")
    for kind_, path in (("sirene", plain), ("bodacc", bodacc)):
        name = path.name
        result = CliRunner().invoke(cli, ["ingest", kind_, str(path), "--today", TODAY.isoformat()])
        assert isinstance(result.exception, SystemExit), result.exception  # no traceback
        assert result.exit_code == 3, result.output
        said = " ".join(result.output.split())
        assert "la base de données ne répond pas" in said and f"rien n'a été importé de {name}" in said
        assert "relancez la même commande" in said and "Traceback" not in said


@pytest.mark.postgres
def test_a_connection_terminated_mid_ingest_is_said_in_french(postgres_url, monkeypatch, tmp_path):
    from store.db import get_engine

    engine = get_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(TriggerEvent.__table__.delete())
        conn.execute(Business.__table__.delete())
    ingest_sirene(engine, write_sirene(tmp_path / "first.csv", 200), today=TODAY, parallel=False,
                  now=dt.datetime.now(dt.UTC))
    before = state(engine)

    # Terminate the ingest's own database session from another one, inside the second chunk's transaction.
    admin = create_engine(postgres_url)
    real_known, calls = SireneStore.known, []

    def known_then_killed(self, conn, sirets):
        calls.append(len(sirets))
        if len(calls) == 2:
            pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with admin.begin() as other:
                assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        return real_known(self, conn, sirets)

    monkeypatch.setattr(SireneStore, "known", known_then_killed)
    monkeypatch.setenv("DECLIC_DATABASE_URL", postgres_url)
    monkeypatch.setenv("DECLIC_HOME", str(tmp_path))
    # More rows than one chunk of the command (20,000), so the second chunk exists.
    plain = write_sirene(tmp_path / "stock.csv", 45_000)
    result = CliRunner().invoke(cli, ["ingest", "sirene", str(plain), "--today", TODAY.isoformat()])
    admin.dispose()
    assert isinstance(result.exception, SystemExit), result.exception  # no traceback
    assert result.exit_code == 3, result.output
    said = " ".join(result.output.split())
    assert "connexion à la base de données perdue pendant l'import de stock.csv" in said
    assert "arrêt après la ligne 20001 (en-tête compris): les 20000 premières lignes sont enregistrées" in said
    assert "relancez la même commande" in said.lower()
    assert len(state(engine)[0]) > len(before[0])  # the first chunk stays

    # Rerun: the same end state as one uninterrupted run.
    monkeypatch.setattr(SireneStore, "known", real_known)
    result = CliRunner().invoke(cli, ["ingest", "sirene", str(plain), "--today", TODAY.isoformat()])
    assert result.exit_code == 0, result.output
