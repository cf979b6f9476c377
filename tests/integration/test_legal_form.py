"""The legal form (INSEE catégorie juridique, StockUniteLegale): stored per establishment by both readers on SQLite
and PostgreSQL, inherited by a new branch, never erased by an unknown value, and selected on by segments."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from orchestrator.app.ingest import ingest_sirene, ingest_sirene_ul
from segments.language import parse_segment
from store.models import Business
from store.segment_sql import compile_segment
from tests.integration.test_einvoicing_category import sibling_of
from tests.unit.test_einvoicing_category import ul_row, write_ul
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, row, write

TODAY = dt.date(2025, 12, 5)
B = Business.__table__


def facts(engine) -> dict[str, tuple[str | None, str | None]]:
    with engine.connect() as conn:
        return {s: (c, f) for s, c, f in conn.execute(
            select(B.c.siret, B.c.categorie_entreprise, B.c.categorie_juridique))}


def chosen(engine, legal_forms: list[str]) -> set[str]:
    where = compile_segment(parse_segment({"legal_forms": legal_forms}), today=TODAY)
    with engine.connect() as conn:
        return set(conn.execute(select(B.c.siret).where(where)).scalars())


@pytest.mark.parametrize("columnar", [True, False], ids=["columnar", "rows"])
def test_legal_units_store_the_legal_form(engine, tmp_path, columnar):
    now = dt.datetime.now(dt.UTC)
    ingest_sirene(engine, write(tmp_path / "etab.csv", [row(), row(siret=SIRET_B), row(siret=SIRET_C)]),
                  today=TODAY, now=now)
    ul = write_ul(tmp_path / "StockUniteLegale_utf8.zip", [
        ul_row(categorieJuridiqueUniteLegale="5710"),  # SIRET_A's company: a SAS, GE
        ul_row(siren=SIRET_B[:9], categorieEntreprise="", categorieJuridiqueUniteLegale="1000"),  # the form alone
        ul_row(siren=SIRET_C[:9], categorieEntreprise="", categorieJuridiqueUniteLegale=""),  # nothing known
        ul_row(siren="552081317", categorieJuridiqueUniteLegale="5499"),  # no establishment in the store
        ul_row(siren="552100554", categorieJuridiqueUniteLegale="57"),  # rejected: not the four-digit code
    ])
    report = ingest_sirene_ul(engine, ul, now=now, columnar=columnar)
    assert report.read == 5 and report.accepted == 4
    assert report.rejected == {"catégorie juridique illisible '57' (quatre chiffres attendus)": 1}
    assert report.stored == 2
    assert report.skipped == {"no category (INSEE)": 1, "SIREN not in the store": 1}
    assert facts(engine) == {SIRET_A: ("GE", "5710"), SIRET_B: (None, "1000"), SIRET_C: (None, None)}

    assert ingest_sirene_ul(engine, ul, now=now, columnar=columnar).stored == 0  # idempotent

    # A later file: an unknown legal form keeps the known one, a new one replaces it, the category alone changes.
    later = write_ul(tmp_path / "StockUniteLegale_2.csv", [
        ul_row(categorieJuridiqueUniteLegale="[ND]", categorieEntreprise="ETI"),
        ul_row(siren=SIRET_B[:9], categorieEntreprise="PME", categorieJuridiqueUniteLegale="5499"),
    ])
    assert ingest_sirene_ul(engine, later, now=now, columnar=columnar).stored == 2
    assert facts(engine) == {SIRET_A: ("ETI", "5710"), SIRET_B: ("PME", "5499"), SIRET_C: (None, None)}

    # A new branch of the SAS, arriving before the next legal-unit file, takes its company's legal form.
    branch = sibling_of(SIRET_A)
    ingest_sirene(engine, write(tmp_path / "etab2.csv", [row(siret=branch, nic=branch[9:])]), today=TODAY, now=now)
    assert facts(engine)[branch] == ("ETI", "5710")

    # Segments select on it: level I, level II, the full code, and "unknown".
    assert chosen(engine, ["57"]) == chosen(engine, ["5710"]) == {SIRET_A, branch}
    assert chosen(engine, ["5"]) == {SIRET_A, branch, SIRET_B}
    assert chosen(engine, ["54", "unknown"]) == {SIRET_B, SIRET_C}
    assert chosen(engine, ["1"]) == set()


def test_a_first_load_into_an_empty_store_inherits_nothing_and_stays_unknown(engine, tmp_path):
    # The legal form comes from the legal-unit file only: an establishment file leaves it unknown.
    ingest_sirene(engine, write(tmp_path / "etab.csv", [row(), row(siret=SIRET_B)]), today=TODAY,
                  now=dt.datetime.now(dt.UTC))
    assert facts(engine) == {SIRET_A: (None, None), SIRET_B: (None, None)}
    assert chosen(engine, ["unknown"]) == {SIRET_A, SIRET_B}
