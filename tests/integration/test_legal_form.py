"""The legal form (INSEE catégorie juridique, StockUniteLegale or the Sirene API's unité légale): stored per
establishment by both readers on SQLite and PostgreSQL, inherited by a new branch, never erased by an unknown value,
and selected on by segments."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from sqlalchemy import select

from orchestrator.app.ingest import ingest_sirene, ingest_sirene_ul
from segments.language import parse_segment
from store.models import Business
from store.segment_sql import compile_segment
from tests.integration.test_einvoicing_category import sibling_of
from tests.integration.test_feeds_apis import etablissement
from tests.unit.test_einvoicing_category import ul_row, write_ul
from tests.unit.test_sirene import SIRET_A, SIRET_B, SIRET_C, row, write
from tests.utils.factories import siret
from triggers.feeds.sirene_api import COLUMNS as API_COLUMNS
from triggers.feeds.sirene_api import flat_row

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


def api_file(path, items: list[dict]):
    """Sirene API establishments as the feed writes them (triggers.feeds.sirene_api.pull_sirene): flat rows."""
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=API_COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writeheader()
        writer.writerows(flat_row(item) for item in items)
    return path


def api_item(siret: str, form: str | None, category: str | None = "PME", *, state: str = "A",
             statut: str = "O") -> dict:
    item = etablissement(siret, "2025-12-04T10:00:00.000", dt.date(2015, 3, 2))
    item["uniteLegale"] = {"categorieEntreprise": category, "categorieJuridiqueUniteLegale": form}
    item["statutDiffusionEtablissement"] = statut
    item["periodesEtablissement"][0]["etatAdministratifEtablissement"] = state
    return item


@pytest.mark.parametrize("columnar", [True, False], ids=["columnar", "rows"])
def test_sirene_api_rows_carry_the_legal_form(engine, tmp_path, columnar):
    """The API answer's unité légale gives the legal form as it gives the category: stored on a first load and on an
    update, an empty, masked or unreadable value never erasing the known one, the rest of the row still going in."""
    now = dt.datetime.now(dt.UTC)
    masked, other = sibling_of(SIRET_A), siret()  # `other`: a company of its own (no sibling to inherit from)
    flat = flat_row(api_item(SIRET_A, "5710", "GE"))
    assert (flat["categorieEntreprise"], flat["categorieJuridiqueUniteLegale"]) == ("GE", "5710")
    assert flat_row({"siret": SIRET_A})["categorieJuridiqueUniteLegale"] == ""  # no unité légale block

    first = api_file(tmp_path / "api1.csv", [
        api_item(SIRET_A, "5710", "GE"),
        api_item(SIRET_B, "1000"),
        api_item(SIRET_C, None, None),  # nothing known of the company
        api_item(masked, "5499", statut="P"),  # partial diffusion: the legal unit's facts still go in
    ])
    report = ingest_sirene(engine, first, today=TODAY, now=now, columnar=columnar)
    assert report.rejected == {} and report.stored == 4
    assert facts(engine) == {SIRET_A: ("GE", "5710"), SIRET_B: ("PME", "1000"), SIRET_C: (None, None),
                             masked: ("PME", "5499")}

    # An update: unknown values keep the known form, a new one replaces it, a closed row carries it too; a value that
    # is not four digits is unknown (as an unknown category is) and the row's other facts go in.
    later = api_file(tmp_path / "api2.csv", [
        api_item(SIRET_A, "[ND]", "ETI"),
        api_item(SIRET_B, "", state="F"),
        api_item(SIRET_C, "5499"),
        api_item(masked, "57", statut="P"),
        api_item(other, "54A9", "GE"),
    ])
    report = ingest_sirene(engine, later, today=TODAY, now=now, columnar=columnar)
    assert report.rejected == {} and report.accepted == 5
    assert facts(engine) == {SIRET_A: ("ETI", "5710"), SIRET_B: ("PME", "1000"), SIRET_C: ("PME", "5499"),
                             masked: ("PME", "5499"), other: ("GE", None)}
    with engine.connect() as conn:
        assert conn.execute(select(B.c.state).where(B.c.siret == SIRET_B)).scalar() == "closed"
    assert chosen(engine, ["57"]) == {SIRET_A}
    assert ingest_sirene(engine, later, today=TODAY, now=now, columnar=columnar).stored == 0  # idempotent
