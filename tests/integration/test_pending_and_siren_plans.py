"""The look-ups that lost their own index (migration 0027) still find their rows through one.

Pending events (business not known yet) are found by partial indexes that hold them alone, and a SIREN's
establishments by a range of the SIRET index (`store.ingest.siren_range`). Every statement the ingest runs against
`business` and `triggerevent` while attaching pending events, landing SIREN-only events, giving legal units their
category and letting new establishments inherit it is explained as it runs: on SQLite its plan searches an index
(never a scan of either table), on PostgreSQL it has a plan without a sequential scan of either (with sequential
scans discouraged: on a table of a few rows the planner would rightly prefer one).
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from alembic import command
from sqlalchemy import create_engine, event, inspect, text

from store.businesses import upsert_businesses
from store.db import dispose_engines
from store.ingest import (
    SireneStore,
    businesses_for_sirens,
    event_row,
    inherit_category,
    insert_new_events,
    set_legal_units,
)
from store.migrate import alembic_config, upgrade
from tests.conftest import POSTGRES_URL
from tests.utils.query_plans import query_plan
from tests.utils.schemas import scratch_schema
from triggers.model import BusinessFacts, EventIn

NOW = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)
ON = dt.date(2026, 12, 1)
HEAD_OFFICE, BRANCH, NEIGHBOUR, OTHER = "73282932000074", "73282932000082", "73282933000013", "55208131766522"
TABLES = ("business", "triggerevent")


def _scans_a_table(dialect: str, plan: list[str]) -> bool:
    """True when the plan reads `business` or `triggerevent` (or an alias of either) whole instead of through an
    index (a scan of a partial index, the pending events alone, is a look-up)."""
    for step in plan:
        if dialect == "sqlite":
            m = re.match(r"\s*SCAN (\w+)", step)
            if m and m.group(1) not in ("json_each", "u") and not m.group(1).startswith("anon") and "INDEX" not in step:
                return True
        elif re.search(r"Seq Scan on (business|triggerevent)\b", step):
            return True
    return False


@pytest.fixture
def explained(engine):
    """The (statement, plan) of each look-up or update touching `business` or `triggerevent` while recording."""
    seen: list[tuple[str, list[str]]] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        head = statement.lstrip()[:6].upper()
        if executemany or head not in ("SELECT", "UPDATE") or not any(t in statement for t in TABLES):
            return
        seen.append((" ".join(statement.split()), query_plan(conn, statement, parameters)))

    event.listen(engine, "before_cursor_execute", explain)
    yield seen
    event.remove(engine, "before_cursor_execute", explain)


def _store(engine) -> dict[str, int]:
    facts = [BusinessFacts(siret=s, name="Atelier", commune_code="35238", state=state)
             for s, state in ((HEAD_OFFICE, "active"), (BRANCH, "active"), (NEIGHBOUR, "active"), (OTHER, "closed"))]
    with engine.begin() as conn:
        ids = upsert_businesses(conn, facts, now=NOW)
        insert_new_events(conn, [
            event_row(EventIn(source="bodacc", external_id="siren-only", type="closure", siren="732829320",
                              occurred_on=ON), None, NOW),
            event_row(EventIn(source="bodacc", external_id="by-siret", type="closure", siret=OTHER, occurred_on=ON),
                      None, NOW),
        ])
    return ids


def test_pending_events_and_sirens_are_found_through_an_index(engine, explained):
    ids = _store(engine)
    store = SireneStore(engine)
    assert store.pending_sirets == {OTHER} and store.pending_sirens == {"732829320"}
    with engine.begin() as conn:
        resolved, rejected = store.resolve_pending(conn, [OTHER], ["732829320"], ids, lambda _t, _c: True)
        # The SIREN-only event lands on the head office (the first active establishment, then by SIRET).
        assert set(resolved) == {(ids[HEAD_OFFICE], "closure", ON), (ids[OTHER], "closure", ON)}
        assert rejected == 0
        # A SIREN's establishments and only them: 732829330's SIRET follows 732829320's in the index.
        assert businesses_for_sirens(conn, ["732829320", "552081317", "999999999"]) == {
            "732829320": (ids[HEAD_OFFICE], HEAD_OFFICE), "552081317": (ids[OTHER], OTHER)}
    changes = set_legal_units(engine, {"732829320": ("PME", "5710"), "111111118": ("GE", None)}, now=NOW)
    assert (changes.changed, changes.unknown) == (1, 1)
    with engine.begin() as conn:
        inherit_category(conn, [NEIGHBOUR])
    recorded = list(explained)  # the ingest's statements (not the reads that check what it did)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT siret, categorie_juridique FROM business")).all())
        events = conn.execute(text("SELECT external_id, status, siret FROM triggerevent ORDER BY external_id")).all()
    assert stored == {HEAD_OFFICE: "5710", BRANCH: "5710", NEIGHBOUR: None, OTHER: None}
    assert [tuple(e) for e in events] == [("by-siret", "accepted", OTHER), ("siren-only", "accepted", HEAD_OFFICE)]

    statements = " | ".join(s for s, _ in recorded)
    for wanted in ("status = 'pending' AND triggerevent.siret =", "status = 'pending' AND triggerevent.siren =",
                   "business.siret >= ", "sibling.siret >= business.siren", "b.siret >= "):
        assert wanted in statements  # each look-up of the migration's indexes was explained
    scans = [(s, plan) for s, plan in recorded if _scans_a_table(engine.dialect.name, plan)]
    assert scans == []


def test_the_check_sees_a_scan_of_business_by_siren(engine):
    # The SIREN column has no index any more: a look-up by it reads the whole table, and the check above says so.
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            plan = query_plan(conn, "SELECT id FROM business WHERE siren = ?", ("732829320",))
        else:
            plan = query_plan(conn, "SELECT id FROM business WHERE siren = %(s)s", {"s": "732829320"})
    assert _scans_a_table(engine.dialect.name, plan)


def _indexes(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        found = inspect(engine)
        return {t: {ix["name"] for ix in found.get_indexes(t)} for t in TABLES}
    finally:
        engine.dispose()


def _round_trip(url: str) -> None:
    upgrade(url)
    after = _indexes(url)
    assert {"ix_triggerevent_pending_siret", "ix_triggerevent_pending_siren"} <= after["triggerevent"]
    assert not {"ix_triggerevent_siret", "ix_triggerevent_siren", "ix_trigger_event_status"} & after["triggerevent"]
    assert "ix_business_siren" not in after["business"]
    command.downgrade(alembic_config(url), "0026")
    before = _indexes(url)
    assert {"ix_triggerevent_siret", "ix_triggerevent_siren", "ix_trigger_event_status"} <= before["triggerevent"]
    assert not {"ix_triggerevent_pending_siret", "ix_triggerevent_pending_siren"} & before["triggerevent"]
    assert "ix_business_siren" in before["business"]
    upgrade(url)
    assert _indexes(url) == after
    dispose_engines()


def test_sqlite_migration_0027_goes_down_and_up(tmp_path):
    _round_trip(f"sqlite:///{tmp_path / 'trip.db'}")


@pytest.mark.postgres
def test_postgres_migration_0027_goes_down_and_up():
    with scratch_schema(POSTGRES_URL, "m") as url:
        _round_trip(url)


@pytest.mark.postgres
def test_siren_ranges_run_without_jit_on_postgres_and_the_setting_comes_back(postgres_url):
    # The planner prices a SIREN's range of the SIRET index at thousands of rows: without this, a chunk of 30,000
    # SIRENs was JIT-compiled for longer than it ran (store.ingest._without_jit).
    from store.db import get_engine

    engine = get_engine(postgres_url)
    seen: list[str] = []

    def jit_now(conn, cursor, statement, parameters, context, executemany):
        if "unnest" in statement and "business" in statement:
            raw = conn.connection.driver_connection.cursor()
            raw.execute("SELECT current_setting('jit')")
            seen.append(raw.fetchone()[0])

    event.listen(engine, "before_cursor_execute", jit_now)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("SET LOCAL jit = on")
            before = conn.exec_driver_sql("SELECT current_setting('jit')").scalar()
            businesses_for_sirens(conn, ["732829320"])
            after = conn.exec_driver_sql("SELECT current_setting('jit')").scalar()
        set_legal_units(engine, {"732829320": ("PME", None)}, now=NOW)
    finally:
        event.remove(engine, "before_cursor_execute", jit_now)
    assert before == after == "on"
    assert seen == ["off", "off"]  # the BODACC look-up and the legal units' read (no change to write)
