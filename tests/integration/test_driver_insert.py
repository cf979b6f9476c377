"""Rows written with the driver's own parameters (store/driver.py) are stored exactly as SQLAlchemy stores them:
the same text for dates, times and JSON on SQLite, the same values on PostgreSQL; ON CONFLICT and RETURNING
behave the same. SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.exc import StatementError

from store.businesses import _upsert, business_row
from store.driver import _plan, insert_rows
from store.events import _insert_events
from store.models import Business, TriggerEvent
from triggers.model import BusinessFacts, ContactPoint

EVENTS = TriggerEvent.__table__
BUSINESS = Business.__table__
PARIS = dt.timezone(dt.timedelta(hours=1))


def event_row(external_id: str) -> dict:
    return {"source": "partner:7", "partner_id": None, "external_id": external_id, "type": "creation",
            "siret": "73282932000074", "siren": "732829320", "business_id": None,
            "occurred_on": dt.date(2026, 11, 3), "received_at": dt.datetime(2026, 11, 3, 10, 15, 2, 123456, PARIS),
            "status": "pending", "planned": False, "payload": {"réseau": "BGE", "n": 1.5, "liste": [1, None, True]}}


def raw(engine, table: str, columns: str, key: str, values: tuple[str, str]) -> list[tuple]:
    # What the database holds, read without SQLAlchemy's result processing.
    with engine.connect() as conn:
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        return [tuple(r) for r in conn.exec_driver_sql(
            f"SELECT {columns} FROM {table} WHERE {key} IN ({mark}, {mark}) ORDER BY {key}", values)]


def test_events_written_by_the_driver_are_stored_as_sqlalchemy_stores_them(engine):
    stmt = _insert_events(engine.dialect.name)
    with engine.begin() as conn:
        assert _plan(stmt, type(conn.dialect), tuple(event_row("x"))) is not None  # the driver path is taken
        by_sqlalchemy = conn.execute(stmt, [event_row("by-sqlalchemy")]).all()
        by_driver = insert_rows(conn, stmt, [event_row("by-driver"), event_row("by-driver")])
        again = insert_rows(conn, stmt, [event_row("by-driver")])
    assert len(by_sqlalchemy) == 1 and [r[2] for r in by_driver] == ["by-driver"]  # the same key once
    assert again == []  # ON CONFLICT DO NOTHING: a stored event returns nothing
    columns = "occurred_on, received_at, status, planned, payload"
    stored = raw(engine, "triggerevent", columns, "external_id", ("by-driver", "by-sqlalchemy"))
    assert stored[0] == stored[1]
    with engine.connect() as conn:
        rows = conn.execute(select(EVENTS).where(EVENTS.c.external_id.in_(["by-driver", "by-sqlalchemy"]))
                            .order_by(EVENTS.c.external_id)).all()
    read = [{k: v for k, v in r._mapping.items() if k not in ("id", "external_id")} for r in rows]
    assert read[0] == read[1]
    assert read[0]["received_at"] == dt.datetime(2026, 11, 3, 9, 15, 2, 123456, dt.UTC)
    assert read[0]["payload"] == {"réseau": "BGE", "n": 1.5, "liste": [1, None, True]}
    if engine.dialect.name == "sqlite":  # a flag goes to the driver as SQLAlchemy sends it there: 0 or 1, never a bool
        params = _plan(stmt, type(engine.dialect), tuple(event_row("x"))).params([event_row("x")])
        assert [type(v) for v in params if isinstance(v, int)] == [int]


def test_business_upserts_by_the_driver_match_sqlalchemy_and_merge_the_same_way(engine):
    def facts(siret: str, **more) -> BusinessFacts:
        return BusinessFacts(siret=siret, name="Boulangerie Martin", naf_code="10.71C", commune_code="35238",
                             creation_date=dt.date(2026, 10, 1), employer=False,
                             contacts=[ContactPoint("email", "contact@exemple.fr", "partner:7", True)], **more)

    stmt = _upsert(engine.dialect.name, False, True)
    rows = []
    for siret in ("73282932000074", "35600000000048"):
        row = business_row(facts(siret))
        row["created_by"], row["state"] = "partner:7", "active"
        row["created_at"] = row["updated_at"] = dt.datetime(2026, 11, 3, 10, 0, tzinfo=dt.UTC)
        rows.append(row)
    with engine.begin() as conn:
        # The driver path is taken, the column the rows leave out (a constant default) included.
        assert _plan(stmt, type(conn.dialect), tuple(rows[0])).fill == {"free_offers_only": False}
        conn.execute(stmt, [rows[0]])
        insert_rows(conn, stmt, [rows[1]])
        # The merge on conflict: a later row without a name keeps the stored one, its new phone is taken.
        later = dict(rows[1], name=None, phone="+33612345678", phone_source="partner:7")
        returned = insert_rows(conn, stmt, [later])
    columns = ("siret, name, naf_code, metier_family, commune_code, departement_code, creation_date, employer, "
               "email, phone_consent, created_at, updated_at, created_by, state, free_offers_only")
    first, second = raw(engine, "business", columns, "siret", ("73282932000074", "35600000000048"))
    assert first[1:] == second[1:]
    with engine.connect() as conn:
        merged = conn.execute(select(BUSINESS).where(BUSINESS.c.siret == "35600000000048")).one()
    assert returned == [(merged.id, "35600000000048")]
    assert merged.name == "Boulangerie Martin" and merged.phone == "+33612345678"



def test_rows_are_read_by_column_name_and_a_missing_column_is_refused(engine):
    stmt = _insert_events(engine.dialect.name)
    reordered = dict(reversed(list(event_row("reordered").items())))
    short = {k: v for k, v in event_row("short").items() if k != "planned"}
    with engine.begin() as conn:
        returned = insert_rows(conn, stmt, [event_row("in-order"), reordered])
        assert sorted(r[2] for r in returned) == ["in-order", "reordered"]
        # A row lacking a column is left to SQLAlchemy, which refuses it as before (nothing half written).
        with pytest.raises(StatementError, match="planned"), conn.begin_nested():
            insert_rows(conn, stmt, [event_row("full"), short])
    stored = raw(engine, "triggerevent", "occurred_on, received_at, payload, external_id", "external_id",
                 ("in-order", "reordered"))
    assert [r[:3] for r in stored] == [stored[0][:3]] * 2
    assert raw(engine, "triggerevent", "id", "external_id", ("full", "short")) == []
