"""The partner intake's store reads and writes by the driver give what SQLAlchemy's statements give: the stored
details of known businesses (`stored_details`, on SQLite one read with the SIRETs as a JSON array, its BOOLEAN
read back as a bool), event rows given as tuples (`insert_values`) stored as the same rows given as dicts
(`insert_rows`), and plain SQL run by the driver's cursor (`driver_sql`) as `exec_driver_sql` runs it: rows, row
counts, the caller's transaction, SQLAlchemy's errors, and statement listeners still told. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from store.businesses import StoredDetails, _details_query, stored_details, upsert_businesses
from store.driver import driver_sql, insert_rows, insert_values
from store.events import _EVENT_COLUMNS, _insert_events
from store.models import Business, TriggerEvent
from triggers.model import BusinessFacts

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__
NOW = dt.datetime(2026, 11, 3, 10, 15, 2, 123456, dt.timezone(dt.timedelta(hours=1)))
SIRETS = ("73282932000074", "35600000000048", "55208131766522")


def test_stored_details_are_those_of_the_select(engine):
    with engine.begin() as conn:
        upsert_businesses(conn, [BusinessFacts(siret=s, name=f"Atelier {i}", commune_code="35238")
                                 for i, s in enumerate(SIRETS)], created_by="partner:7", now=NOW)
        # Sirene's head-office flag: true, false, and unknown (None).
        conn.execute(update(BUSINESS).where(BUSINESS.c.siret == SIRETS[0]).values(head_office=True))
        conn.execute(update(BUSINESS).where(BUSINESS.c.siret == SIRETS[1]).values(head_office=False))
    with engine.connect() as conn:
        got = stored_details(conn, [*SIRETS, "44306184100047", SIRETS[0]])  # an unknown SIRET, one twice
        expected = {r.siret: StoredDetails(*r) for r in conn.execute(_details_query(), {"sirets": list(SIRETS)})}
        assert stored_details(conn, []) == {}
    assert got == expected and set(got) == set(SIRETS)
    assert [got[s].head_office for s in SIRETS] == [True, False, None]
    assert all(type(got[s].head_office) is bool for s in SIRETS[:2]) and got[SIRETS[2]].created_by == "partner:7"


def event(external_id: str) -> tuple:
    return ("partner:7", None, external_id, "creation", "73282932000074", "732829320", None, dt.date(2026, 11, 3),
            NOW, "pending", False, {"réseau": "BGE", "n": 1.5})


def test_event_tuples_are_stored_as_the_same_rows_given_as_dicts(engine):
    stmt = _insert_events(engine.dialect.name)
    with engine.begin() as conn:
        by_values = insert_values(conn, stmt, _EVENT_COLUMNS, [event("tuple-1"), event("tuple-2"), event("tuple-1")])
        by_rows = insert_rows(conn, stmt, [dict(zip(_EVENT_COLUMNS, event(x), strict=True))
                                           for x in ("dict-1", "dict-2")])
        again = insert_values(conn, stmt, _EVENT_COLUMNS, [event("tuple-2")])
        # Columns in another order: read by name.
        names = tuple(reversed(_EVENT_COLUMNS))
        insert_values(conn, stmt, names, [tuple(reversed(event("reversed")))])
    assert sorted(r[2] for r in by_values) == ["tuple-1", "tuple-2"] and len(by_rows) == 2
    assert again == []  # ON CONFLICT DO NOTHING: a stored event returns nothing
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.source == "partner:7").order_by(EVENTS.c.external_id)).all()
    stored = {r.external_id: {k: v for k, v in r._mapping.items() if k not in ("id", "external_id")} for r in rows}
    assert set(stored) == {"dict-1", "dict-2", "reversed", "tuple-1", "tuple-2"}
    assert all(values == stored["dict-1"] for values in stored.values())
    assert stored["tuple-1"]["received_at"] == NOW.astimezone(dt.UTC)


def test_event_tuples_leaving_a_column_out_get_its_default_as_rows_leaving_it_out(engine):
    stmt = _insert_events(engine.dialect.name)
    names = tuple(c for c in _EVENT_COLUMNS if c != "planned")

    def short(external_id: str) -> tuple:
        return tuple(v for c, v in zip(_EVENT_COLUMNS, event(external_id), strict=True) if c != "planned")

    with engine.begin() as conn:
        insert_values(conn, stmt, names, [short("short-tuple")])
        insert_rows(conn, stmt, [dict(zip(names, short("short-dict"), strict=True))])
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS.c.planned, EVENTS.c.status, EVENTS.c.payload)
                            .where(EVENTS.c.external_id.in_(["short-tuple", "short-dict"]))).all()
    assert len(rows) == 2 and rows[0] == rows[1] and rows[0].planned is False


def test_driver_sql_runs_as_exec_driver_sql_does(engine):
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    insert = f"UPDATE business SET name = {mark} WHERE siret = {mark}"
    read = f"SELECT siret, name, head_office FROM business WHERE siret IN ({mark}, {mark}) ORDER BY siret"
    with engine.begin() as conn:
        upsert_businesses(conn, [BusinessFacts(siret=s, name="Atelier") for s in SIRETS], now=NOW)
        # A list of parameter sequences: once for each, the rows changed summed; a statement without rows gives none.
        changed = driver_sql(conn, insert, [("Fournil", SIRETS[0]), ("Salon", SIRETS[1]), ("Nul", "00000000000000")])
        assert (changed.rows, changed.rowcount) == ([], 2)
        assert driver_sql(conn, insert, []).rowcount == 0  # no parameter sequence: not run at all
        got = driver_sql(conn, read, (SIRETS[0], SIRETS[1]))
        assert got.rows == [tuple(r) for r in conn.exec_driver_sql(read, (SIRETS[0], SIRETS[1])).all()]
        assert got.rows == sorted([(SIRETS[0], "Fournil", None), (SIRETS[1], "Salon", None)])
        assert all(type(r) is tuple for r in got.rows) and driver_sql(conn, read, ("x", "y")).rows == []
    # In the caller's transaction: rolled back with it.
    with engine.connect() as conn:
        with conn.begin() as tx:
            driver_sql(conn, insert, ("Effacé", SIRETS[2]))
            assert driver_sql(conn, read, (SIRETS[2], SIRETS[2])).rows[0][1] == "Effacé"
            tx.rollback()
        assert conn.execute(select(BUSINESS.c.name).where(BUSINESS.c.siret == SIRETS[2])).scalar() == "Atelier"


def test_driver_sql_errors_are_sqlalchemys(engine):
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    with engine.connect() as conn:
        with pytest.raises(IntegrityError) as caught, conn.begin():
            upsert_businesses(conn, [BusinessFacts(siret=s) for s in SIRETS[:2]], now=NOW)
            driver_sql(conn, f"UPDATE business SET siret = {mark}", ("00000000000000",))  # two rows, one SIRET
        assert "UPDATE business" in str(caught.value) and caught.value.orig is not None
        with pytest.raises((OperationalError, ProgrammingError)), conn.begin():
            driver_sql(conn, "SELECT nothing FROM nowhere")


def test_statement_listeners_still_see_driver_sql(engine):
    seen: list[str] = []

    def before(conn, cursor, statement, *args):
        seen.append(statement)

    sa_event.listen(engine, "before_cursor_execute", before)
    try:
        with engine.connect() as conn:
            assert driver_sql(conn, "SELECT 1 + 1").rows == [(2,)]
    finally:
        sa_event.remove(engine, "before_cursor_execute", before)
    assert seen == ["SELECT 1 + 1"]
