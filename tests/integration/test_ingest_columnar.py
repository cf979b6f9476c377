"""The columnar Sirene readers (pyarrow) give what the row-by-row readers give: same chunks, same businesses, same
events, same categories, same rejects (line, field, reason, raw), on files full of awkward rows (establishments and
legal units), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import itertools
import zipfile

import pytest
from sqlalchemy import delete, select

from orchestrator.app.ingest import ingest_sirene, ingest_sirene_ul
from store.models import Business, TriggerEvent
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, SIRET_LA_POSTE, row, write
from triggers import sirene_columnar
from triggers.report import RejectSink
from triggers.sirene import COLUMNS_48, SireneFormatError, chunked_records
from triggers.sirene_columnar import BLOCK_SIZE, columnar_chunks, columnar_unites, siret_fast_ok
from triggers.sirene_ul import COLUMNS_UL, chunked_unites

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


@pytest.mark.parametrize("drop", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 4, 20_000])
def test_first_load_columns_equal_the_row_builder(tmp_path, drop, chunk_size):
    # The Arrow builder of a first load's business rows gives FirstLoadRows' columns, recent creations and counts;
    # without the reader's drop (closed and non-TPE rows kept) and on a repeated SIRET it hands the chunk over.
    from triggers.sirene import FirstLoadRows, row_values
    from triggers.sirene_columnar import ColumnarReader, FirstLoadColumns, business_values, ipc_bytes, row_major

    cutoffs = (TODAY.isoformat(), (TODAY - dt.timedelta(days=90)).isoformat(), "2023-11-27")
    path = tricky_file(tmp_path, 1)
    handed_over = []

    class Counted(FirstLoadRows):
        def build(self, records):
            handed_over.append(len(records))
            return super().build(records)

    by_rows = FirstLoadRows(*cutoffs)
    by_columns = FirstLoadColumns(Counted(*cutoffs))
    tables = [t for t, *_ in ColumnarReader(path, drop_out_of_scope=drop).tables(chunk_size)]
    records = [recs for recs, *_ in columnar_chunks(path, None, chunk_size, drop)]
    assert len(tables) == len(records) > 0
    recent_seen = 0
    for table, recs in zip(tables, records, strict=True):
        columns, recent, skipped = by_rows.build(recs)
        batch, recent_c, skipped_c = by_columns.build(table)
        # Row after row, the flags as the text SQLite's NUMERIC affinity stores as 1 and 0.
        expected = [("1" if v else "0") if isinstance(v, bool) else v for v in row_values(columns)]
        assert business_values(ipc_bytes(row_major(batch))) == expected
        assert recent_c == recent and skipped_c == skipped
        recent_seen += len(recent)
    assert recent_seen >= 10  # the recent creations of the file, each found once
    if drop and chunk_size == 1:
        assert handed_over == []  # every chunk built by Arrow
    if not drop:
        assert handed_over  # closed rows: the row builder's


@pytest.mark.parametrize("name", ["old.csv", "old.csv.gz", "old.zip"])
def test_a_first_load_of_the_48_column_header_stores_what_the_row_reader_stores(engine, tmp_path, name):
    # The older header has no NAF 2025 code nor company category: the Arrow builder fills them with nothing, as
    # the row builder does; compressed files go the same way.
    rows = [row(COLUMNS_48), row(COLUMNS_48, siret=SIRET_B, dateCreationEtablissement=RECENT),
            row(COLUMNS_48, siret=SIRET_C, statutDiffusionEtablissement="P")]
    path = write(tmp_path / name, rows, columns=COLUMNS_48)
    states = []
    for columnar in (False, True):
        ingest_sirene(engine, path, today=TODAY, parallel=False, columnar=columnar, now=dt.datetime.now(dt.UTC))
        states.append(_state(engine))
        with engine.begin() as conn:
            conn.execute(delete(E))
            conn.execute(delete(B))
    assert states[1] == states[0]
    businesses, events = states[0]
    assert len(businesses) == 3 and [e[2] for e in events] == ["creation"]


def test_a_first_load_stores_its_flags_as_integers(tmp_path):
    # The parser sends the flags as "1"/"0" (`row_major`): SQLite must store the integers a bool gives.
    import sqlalchemy as sa

    from store.db import make_engine
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'flags.db'}"
    upgrade(url)
    engine = make_engine(url)
    ingest_sirene(engine, tricky_file(tmp_path, 1), today=TODAY, parallel=False, columnar=True,
                  now=dt.datetime.now(dt.UTC))
    with engine.connect() as conn:
        kinds = set(conn.execute(sa.text(
            "SELECT typeof(employer), typeof(do_not_contact), typeof(head_office) FROM business")).all())
        flags = set(conn.execute(select(B.c.do_not_contact, B.c.head_office)).all())
    engine.dispose()
    assert {k for row in kinds for k in row} <= {"integer", "null"} and ("integer", "integer", "integer") in kinds
    assert {True, False} <= {f for row in flags for f in row}


def test_the_deferred_indexes_are_built_and_the_connection_gets_its_settings_back(tmp_path):
    # A first load builds the business indexes at the end with SQLite settings of its own (a small sort run,
    # worker threads): the indexes are there after it, and the pooled connection has its own settings again.
    import sqlalchemy as sa

    from store.db import make_engine
    from store.ingest import BUSINESS, ensure_business_indexes
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'indexes.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        before = (conn.exec_driver_sql("PRAGMA cache_size").scalar(), conn.exec_driver_sql("PRAGMA threads").scalar())
        for ix in BUSINESS.indexes:
            if ix.name != "ix_business_siret":
                ix.drop(conn)
    ensure_business_indexes(engine)
    with engine.connect() as conn:
        names = {ix["name"] for ix in sa.inspect(conn).get_indexes("business")}
        after = (conn.exec_driver_sql("PRAGMA cache_size").scalar(), conn.exec_driver_sql("PRAGMA threads").scalar())
    engine.dispose()
    assert names >= {ix.name for ix in BUSINESS.indexes} - {"ix_business_siret"}
    assert after == before and before[0] != -4096


def test_a_first_load_keeps_only_the_siret_and_paused_indexes_then_builds_the_others(tmp_path):
    # The deferred indexes are the ones that take keys in random order; the partial paused index takes none from a
    # load (no load writes paused_until), so building it at the end would scan the whole table for nothing.
    import sqlalchemy as sa

    from store.db import make_engine
    from store.ingest import BUSINESS, first_load
    from store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'first.db'}"
    upgrade(url)
    engine = make_engine(url)

    def names() -> set[str]:
        with engine.connect() as conn:
            return {ix["name"] for ix in sa.inspect(conn).get_indexes("business")}

    with first_load(engine) as empty:
        during = names()
    after = names()
    engine.dispose()
    assert empty is True
    assert during == {"ix_business_siret", "ix_business_paused_until"}
    assert after == {ix.name for ix in BUSINESS.indexes}


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
                               rejects=RejectSink(sink), now=dt.datetime.now(dt.UTC))
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


# --- legal units (StockUniteLegale) ---------------------------------------------------------------------------


def tricky_unites(tmp_path, name: str = "StockUniteLegale_utf8.csv"):
    """Generated legal units with, among them, one row of each awkward kind, blank lines and rows of the wrong
    width (one of them the last line)."""
    from bench.ingest_data import unite_rows

    pos = {c: i for i, c in enumerate(COLUMNS_UL)}
    rows = list(unite_rows(400))

    def ul(k: int, **values: str) -> list[str]:
        out = list(rows[k])
        for key, value in values.items():
            out[pos[key]] = value
        return out

    awkward = [
        ul(1, siren="123456789"),  # bad key
        ul(2, siren="12345678"),  # 8 digits
        ul(3, siren="55210O554"),  # a letter O
        ul(4, siren=" 552100554"),  # python-stdnum reads it once the space is gone: accepted as is
        ul(5, siren=SIRET_LA_POSTE[:9]),
        ul(6, categorieEntreprise="XXL"),
        ul(7, categorieEntreprise=" pme "),
        ul(8, categorieEntreprise="[ND]", anneeCategorieEntreprise="[ND]"),
        ul(9, categorieEntreprise="GE", anneeCategorieEntreprise="20x3"),
        ul(10, categorieEntreprise="ETI", anneeCategorieEntreprise=" 2024 "),
        ul(11, categorieEntreprise="PME", anneeCategorieEntreprise="２０２３"),  # str.isdigit reads these digits
        ul(12, denominationUniteLegale='CHEZ "PAULO", BAR\nTABAC', categorieEntreprise="PME"),
        ul(13, denominationUniteLegale="A\n\nB", categorieEntreprise="XXL"),  # rejected after a multi-line value
        ul(14, siren=""),
        ul(15, categorieJuridiqueUniteLegale="57"),  # the legal form: four digits or nothing
        ul(16, categorieJuridiqueUniteLegale=" 5710 "),
        ul(17, categorieJuridiqueUniteLegale="[ND]", categorieEntreprise=""),
        ul(18, categorieJuridiqueUniteLegale="５７１０"),  # digits, but not ASCII ones
    ]
    for k, line in enumerate(awkward):
        rows.insert(7 + 23 * k, line)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS_UL)
    writer.writerows(rows)
    lines = buf.getvalue().split("\n")
    lines.insert(5, "")
    lines.insert(40, "552100554,O,GE")  # too short
    lines.insert(90, "")
    lines.insert(120, ",".join(["1"] * 40))  # too wide
    path = tmp_path / name
    path.write_text("\ufeff" + "\n".join(lines) + ",".join(["2"] * 3) + "\n", encoding="utf-8")
    return path


def _ul_chunks(gen) -> list[tuple]:
    return [(list(recs), list(rejects), read) for recs, rejects, read in gen]


@pytest.mark.parametrize("block_size", [4096, BLOCK_SIZE])
@pytest.mark.parametrize("chunk_size", [1, 7, 50_000])
def test_columnar_legal_units_equal_the_row_reader(tmp_path, monkeypatch, block_size, chunk_size):
    # Small Arrow blocks: batch boundaries fall inside the file, multi-line values and bad rows among them.
    monkeypatch.setattr(sirene_columnar, "BLOCK_SIZE", block_size)
    path = tricky_unites(tmp_path)
    by_rows = _ul_chunks(chunked_unites(path, chunk_size))
    by_columns = _ul_chunks(columnar_unites(path, chunk_size))
    assert by_columns == by_rows
    rejects = [r for chunk in by_rows for r in chunk[1]]
    assert {r.field for r in rejects} == {"row", "siren", "categorieEntreprise", "anneeCategorieEntreprise",
                                          "categorieJuridiqueUniteLegale"}
    assert sum(chunk[2] for chunk in by_rows) == 400 + 18 + 3  # rows read: blank lines are not rows
    forms = {rec[3] for chunk in by_rows for rec in chunk[0]}
    assert {"5710", None} <= forms and forms - {None} <= {"1000", "5499", "5710", "9220"}
    assert not any("SOCIETE" in r.raw or "PAULO" in r.raw for r in rejects)  # names are never kept


def test_columnar_legal_units_read_compressed_files(tmp_path):
    plain = tricky_unites(tmp_path)
    data = plain.read_bytes()
    gz = tmp_path / "StockUniteLegale_utf8.csv.gz"
    gz.write_bytes(gzip.compress(data))
    archive = tmp_path / "StockUniteLegale_utf8.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("StockUniteLegale_utf8.csv", data)
    expected = _ul_chunks(chunked_unites(plain, 100))
    for path in (gz, archive):
        assert _ul_chunks(columnar_unites(path, 100)) == expected


def test_columnar_legal_units_refuse_an_establishment_file(tmp_path):
    path = write(tmp_path / "etab.csv", [row()])
    with pytest.raises(SireneFormatError, match="StockUniteLegale"):
        list(columnar_unites(path, 10))


def _categories(engine) -> list[tuple]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(B.c.siret, B.c.categorie_entreprise)).all())


@pytest.mark.parametrize("chunk_size", [5, 50_000])
def test_columnar_legal_unit_ingest_gives_the_same_categories_and_rejects(engine, tmp_path, chunk_size):
    from bench.ingest_data import write_sirene

    establishments = write_sirene(tmp_path / "etab.csv", 400)
    unites = tricky_unites(tmp_path)
    out = []
    for columnar in (False, True):
        ingest_sirene(engine, establishments, today=TODAY, parallel=False, now=dt.datetime.now(dt.UTC))
        sink = io.StringIO()
        report = ingest_sirene_ul(engine, unites, chunk_size=chunk_size, columnar=columnar, rejects=RejectSink(sink),
                                  now=dt.datetime.now(dt.UTC))
        again = ingest_sirene_ul(engine, unites, chunk_size=chunk_size, columnar=columnar, now=dt.datetime.now(dt.UTC))
        out.append((report.to_dict(), sink.getvalue(), again.to_dict(), _categories(engine)))
        with engine.begin() as conn:
            conn.execute(delete(E))
            conn.execute(delete(B))
    assert out[1] == out[0]
    report = out[0][0]
    assert report["stored"] > 20 and report["rejected"] and not out[0][2].get("stored")
    assert {c for _s, c in out[0][3]} >= {"PME", None}


def test_a_multi_line_value_across_arrow_blocks_reads_the_same(tmp_path, monkeypatch):
    # Arrow cuts the file in blocks; a quoted value holding a line break may straddle two of them.
    path = tricky_file(tmp_path, 1)
    expected = _chunks(chunked_records(path, None, 4))
    for block_size in range(2600, 3000, 7):
        monkeypatch.setattr(sirene_columnar, "BLOCK_SIZE", block_size)
        assert _chunks(columnar_chunks(path, None, 4)) == expected, block_size
