"""A territory look-up by EPCI or région finds the same businesses as the columns say, through an index.

`business` has no index of its own on `epci_code` or `region_code` since migration 0029: an EPCI is found by its
communes and a région by its départements (`store.segment_sql.place_clause`), the stored code still compared. The
businesses here are placed by the ingest's own rules (commune -> EPCI, département, région from the reference), in
communes spread over the whole country: Paris and its arrondissements, Corsica, overseas, communes outside any EPCI.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from alembic import command
from sqlalchemy import create_engine, event, func, inspect, or_, select

from orchestrator.core.campaign_spec import load_spec
from segments.territory import _current_communes
from store.accounts import Scope, business_clause
from store.businesses import upsert_businesses
from store.db import dispose_engines
from store.migrate import alembic_config, upgrade
from store.models import Business
from store.segment_sql import compile_segment, place_clause, territory_clause
from tests.conftest import POSTGRES_URL
from tests.utils.factories import campaign_spec, siret
from tests.utils.query_plans import query_plan
from tests.utils.schemas import scratch_schema
from triggers.model import BusinessFacts

B = Business.__table__
NOW = dt.datetime(2026, 12, 6, 9, 0, tzinfo=dt.UTC)
# Every 61st current commune (about 570, every région), Paris through an arrondissement code, Ajaccio, Saint-Denis
# de La Réunion, Île-de-Sein (outside any EPCI), and one commune code the reference does not know.
SAMPLE = sorted(_current_communes())[::61] + ["75104", "2A004", "97411", "29083", "99999"]


@pytest.fixture
def placed(engine):
    facts = [BusinessFacts(siret=siret(), name=f"Atelier {i}", commune_code=code) for i, code in enumerate(SAMPLE)]
    with engine.begin() as conn:
        upsert_businesses(conn, facts, now=NOW)
        rows = conn.execute(select(B.c.id, B.c.commune_code, B.c.epci_code, B.c.departement_code,
                                   B.c.region_code)).all()
    assert len(rows) == len(SAMPLE)
    return rows


def _ids(engine, clause) -> set[int]:
    with engine.connect() as conn:
        return set(conn.execute(select(B.c.id).where(clause)).scalars())


def test_each_epci_and_region_selects_the_businesses_its_column_names(engine, placed):
    epcis = sorted({r.epci_code for r in placed if r.epci_code})
    regions = sorted({r.region_code for r in placed if r.region_code})
    assert len(epcis) > 400 and len(regions) >= 17  # metropolitan and overseas
    for code in epcis:
        assert _ids(engine, place_clause(B.c, "epci", [code])) == {r.id for r in placed if r.epci_code == code}, code
    for code in regions:
        assert _ids(engine, place_clause(B.c, "region", [code])) == {r.id for r in placed if r.region_code == code}
    paris = next(r for r in placed if r.departement_code == "75")
    assert _ids(engine, place_clause(B.c, "commune", ["75056"])) == {paris.id}  # the arrondissement, as its commune
    assert _ids(engine, place_clause(B.c, "epci", ["000000000"])) == set()  # an unknown EPCI: nobody


def test_a_mixed_territory_is_the_union_of_its_places(engine, placed):
    some = sorted(placed, key=lambda r: r.commune_code or "")[::7]  # by commune: the same places on every run
    territory = {"communes": [some[0].commune_code], "epci": [r.epci_code for r in some[1:4] if r.epci_code],
                 "departements": [some[4].departement_code], "regions": [some[5].region_code]}
    old = or_(B.c.commune_code.in_(territory["communes"]), B.c.epci_code.in_(territory["epci"]),
              B.c.departement_code.in_(territory["departements"]), B.c.region_code.in_(territory["regions"]))
    expected = _ids(engine, old)
    assert len(expected) > 30
    assert _ids(engine, territory_clause(B.c, territory)) == expected
    scope = Scope(user_id=1, role="collectivite", name="Collectivité", territory=territory)
    assert _ids(engine, business_clause(scope)) == expected
    assert _ids(engine, territory_clause(B.c, {})) == set()


def _scans_business(dialect: str, plan: list[str]) -> bool:
    if dialect == "sqlite":
        return any(re.match(r"\s*SCAN business\b", step) and "INDEX" not in step for step in plan)
    return any("Seq Scan on business" in step for step in plan)


def test_epci_and_region_segments_are_read_through_an_index(engine, placed):
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    rennes = next(r for r in placed if r.departement_code == "35" and r.epci_code)
    seen: list[tuple[str, list[str]]] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith("SELECT"):
            seen.append((statement, query_plan(conn, statement, parameters)))

    territories = ({"epci": [rennes.epci_code]}, {"regions": ["53"]}, {"regions": ["53"], "epci": ["200054781"]})
    event.listen(engine, "before_cursor_execute", explain)
    try:
        with engine.connect() as conn:
            for territory in territories:
                owner = {"name": "Collectivité", "territory": territory}
                spec = load_spec(campaign_spec(owner=owner))
                clause = compile_segment(spec.segment, today=NOW.date(), territory=spec.effective_territory())
                conn.execute(select(func.count()).select_from(B).where(clause)).scalar()
                conn.execute(select(B.c.id).where(business_clause(Scope(1, "collectivite", "Collectivité", territory))))
    finally:
        event.remove(engine, "before_cursor_execute", explain)
    assert len(seen) == 2 * len(territories)
    for statement, plan in seen:
        assert not _scans_business(engine.dialect.name, plan), (statement, plan)


def _indexes(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {ix["name"] for ix in inspect(engine).get_indexes("business")}
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    upgrade(url)
    after = _indexes(url)
    assert {"ix_business_commune_code", "ix_business_dep_family"} <= after
    assert not {"ix_business_epci_code", "ix_business_region_code"} & after
    command.downgrade(alembic_config(url), "0028")
    assert {"ix_business_epci_code", "ix_business_region_code"} <= _indexes(url)
    upgrade(url)
    assert _indexes(url) == after
    dispose_engines()


def test_sqlite_migration_0029_goes_down_and_up(tmp_path):
    _round_trip(f"sqlite:///{tmp_path / 'trip.db'}")


@pytest.mark.postgres
def test_postgres_migration_0029_goes_down_and_up():
    with scratch_schema(POSTGRES_URL, "m") as url:
        _round_trip(url)
