"""The columnar Sirene reader (pyarrow) gives what the row-by-row reader gives: same chunks, same businesses,
same events, same rejects (line, field, reason, raw), on a file full of awkward rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
import itertools

import pytest
from sqlalchemy import delete, select

from orchestrator.app.ingest import ingest_sirene
from store.models import Business, TriggerEvent
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, SIRET_LA_POSTE, row, write
from triggers.report import RejectSink
from triggers.sirene import COLUMNS_48, chunked_records
from triggers.sirene_columnar import columnar_chunks, siret_fast_ok

TODAY = dt.date(2026, 11, 27)
RECENT = (TODAY - dt.timedelta(days=10)).isoformat()
B = Business.__table__
E = TriggerEvent.__table__


def _chunks(gen) -> list[tuple]:
    # Copies: the row reader hands out one rejects list that it clears after each chunk.
    return [(list(recs), list(rejects), read, dict(skipped)) for recs, rejects, read, skipped in gen]


def _siret(i: int) -> str:
    from bench.ingest_data import make_siret

    return make_siret(31_000_000 + i, 1 + i % 7)


def tricky_rows(month: int) -> list[list[str]]:
    """One row of each awkward kind the national stock holds, and some plain ones between them."""
    rows = [
        row(),
        row(siret=SIRET_B, dateCreationEtablissement=RECENT, trancheEffectifsEtablissement="NN"),
        row(siret=SIRET_A[:-1] + "5"),  # bad key
        row(siret="7328293200007"),  # 13 digits
        row(siret="73282932000O74"),  # a letter O
        row(siret=SIRET_LA_POSTE, enseigne1Etablissement="BUREAU DE POSTE"),  # valid by La Poste's rule
        row(siret=_siret(1), trancheEffectifsEtablissement="99"),
        row(siret=_siret(2), etatAdministratifEtablissement="X"),
        row(siret=_siret(3), dateCreationEtablissement="2024-02-30"),
        row(siret=_siret(4), dateCreationEtablissement="2024-5-17"),
        row(siret=_siret(5), dateDebut="17/05/2024"),
        row(siret=_siret(6), dateCreationEtablissement="[ND]", dateDebut=""),
        row(siret=_siret(7), activitePrincipaleEtablissement="99.99Q"),
        row(siret=_siret(8), activitePrincipaleEtablissement="00.00Z"),
        row(siret=_siret(9), nomenclatureActivitePrincipaleEtablissement="NAFRev1",
            activitePrincipaleEtablissement="52.4A"),
        row(siret=_siret(10), codeCommuneEtablissement="99999"),
        row(siret=_siret(11), codeCommuneEtablissement="75111", enseigne1Etablissement="",
            denominationUsuelleEtablissement="CAFE DES ARTS"),
        row(siret=_siret(12), statutDiffusionEtablissement="P", enseigne1Etablissement="[ND]",
            libelleVoieEtablissement="[ND]", codeCommuneEtablissement="[ND]"),
        row(siret=_siret(13), numeroVoieEtablissement="[ND]"),  # masked value on a public unit
        row(siret=_siret(14), statutDiffusionEtablissement="P"),  # partial diffusion, nothing masked
        row(siret=_siret(15), etatAdministratifEtablissement="F", codeCommuneEtablissement="13999",
            activitePrincipaleEtablissement="XX.XXX", dateDebut="2026-11-02"),  # closed: not checked
        row(siret=_siret(16), trancheEffectifsEtablissement="12"),  # not a TPE
        row(siret=_siret(17), enseigne1Etablissement='CHEZ "PAULO", BAR\nTABAC',
            libelleVoieEtablissement="DU 8 MAI, 1945", typeVoieEtablissement="XYZ"),
        row(siret=_siret(18), activitePrincipaleEtablissement="43.22A"),  # after a multi-line value
        row(siret=_siret(18), enseigne1Etablissement="SAME SIRET, LAST ROW"),  # repeated
        row(siret=_siret(19), numeroVoieEtablissement="", typeVoieEtablissement="", libelleVoieEtablissement="",
            caractereEmployeurEtablissement="", etablissementSiege="false", activitePrincipaleNAF25Etablissement=""),
        row(siret=_siret(20), categorieEntreprise="PME"),
    ]
    rows += [row(siret=_siret(100 + i), dateCreationEtablissement=RECENT if i % 3 else "2019-06-01")
             for i in range(25)]
    if month == 2:  # the next month: first hires, closures, activity changes, a reopening
        rows[1] = row(siret=SIRET_B, dateCreationEtablissement=RECENT, trancheEffectifsEtablissement="01")
        rows[0] = row(etatAdministratifEtablissement="F", dateDebut="2026-11-20")
        rows += [row(siret=_siret(100 + i), activitePrincipaleEtablissement="47.11B", dateDebut="2026-11-01")
                 for i in range(0, 25, 4)]
        rows.append(row(siret=SIRET_C, etatAdministratifEtablissement="F"))
    return rows


def tricky_file(tmp_path, month: int, name: str = "stock.csv"):
    """The rows above, a BOM, blank lines and rows of the wrong width among them."""
    path = write(tmp_path / name, tricky_rows(month), bom=True)
    lines = path.read_text(encoding="utf-8").split("\n")
    lines.insert(4, "")  # a blank line
    lines.insert(9, "73282932000074,too,short")  # wrong column count
    lines.insert(15, "")
    lines.insert(20, '"a ""quoted"" value",x')
    text = "\n".join(lines)
    path.write_text(text + "\n" + ",".join(["1"] * 60) + "\n", encoding="utf-8")  # too wide, last line
    return path


def test_vectorised_siret_key_agrees_with_the_row_check():
    from triggers.sirene import siret_is_valid

    values = [SIRET_A, SIRET_B, SIRET_C, SIRET_LA_POSTE, "", "1234", "73282932000075", "7328293200007a"]
    values += [f"{n:014d}" for n in range(0, 10**14, 10**14 // 997)]
    values += ["".join(p) for p in itertools.islice(itertools.permutations("73282932000074"), 500)]
    import pyarrow as pa

    fast = siret_fast_ok(pa.array(values)).to_pylist()
    for v, ok in zip(values, fast, strict=True):
        # The fast path never accepts what python-stdnum refuses, and accepts every Luhn-valid 14-digit value.
        assert not ok or siret_is_valid(v), v
        if v.isdigit() and len(v) == 14 and not v.startswith("356000000"):
            assert ok == siret_is_valid(v), v


@pytest.mark.parametrize("drop", [False, True])
@pytest.mark.parametrize("chunk_size", [1, 4, 20_000])
def test_columnar_chunks_equal_row_reader_chunks(tmp_path, drop, chunk_size):
    path = tricky_file(tmp_path, 1)
    rows_path = _chunks(chunked_records(path, None, chunk_size, drop))
    columnar = _chunks(columnar_chunks(path, None, chunk_size, drop))
    assert columnar == rows_path
    rejects = [r for chunk in columnar for r in chunk[1]]
    assert {r.field for r in rejects} >= {"row", "siret", "trancheEffectifsEtablissement", "dateDebut",
                                          "etatAdministratifEtablissement", "dateCreationEtablissement",
                                          "activitePrincipaleEtablissement", "codeCommuneEtablissement"}


def test_columnar_reads_48_columns_and_compressed_files(tmp_path):
    rows = [row(COLUMNS_48), row(COLUMNS_48, siret=SIRET_B, codeCommuneEtablissement="00000")]
    for name in ("old.csv", "old.csv.gz", "old.zip"):
        path = write(tmp_path / name, rows, columns=COLUMNS_48)
        assert _chunks(columnar_chunks(path, None, 10)) == _chunks(chunked_records(path, None, 10))


def _state(engine) -> tuple:
    with engine.connect() as conn:
        ids = {r.id: r.siret for r in conn.execute(select(B.c.id, B.c.siret))}
        businesses = sorted(
            tuple(v for k, v in r._mapping.items() if k not in ("id", "created_at", "updated_at"))
            for r in conn.execute(select(B))
        )
        events = sorted(
            (r.source, r.external_id, r.type, r.siret, ids.get(r.business_id), r.occurred_on, r.status,
             repr(r.payload))
            for r in conn.execute(select(E))
        )
    return businesses, events


def _run(engine, tmp_path, columnar: bool, chunk_size: int) -> tuple:
    out = []
    for month in (1, 2):
        sink = io.StringIO()
        report = ingest_sirene(engine, tricky_file(tmp_path, month, f"m{month}.csv"), today=TODAY,
                               chunk_size=chunk_size, parallel=False, columnar=columnar,
                               rejects=RejectSink(sink))
        out.append((report.to_dict(), sink.getvalue(), _state(engine)))
    with engine.begin() as conn:
        conn.execute(delete(E))
        conn.execute(delete(B))
    return out


@pytest.mark.parametrize("chunk_size", [3, 20_000])
def test_columnar_ingest_gives_the_same_businesses_events_and_rejects(engine, tmp_path, chunk_size):
    by_rows = _run(engine, tmp_path, False, chunk_size)
    by_columns = _run(engine, tmp_path, True, chunk_size)
    assert by_columns == by_rows
    first, second = by_rows
    assert first[0]["stored"] > 20 and first[0]["rejected"] and second[0]["events"].get("closure")
    assert "ligne" in first[1] or "line" in first[1]
