"""The partner intake's store reads and writes by the driver give what SQLAlchemy's statements give: the stored
details of known businesses (`stored_details`, on SQLite one read with the SIRETs as a JSON array, its BOOLEAN
read back as a bool), and event rows given as tuples (`insert_values`) stored as the same rows given as dicts
(`insert_rows`). SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from store.businesses import StoredDetails, _details_query, stored_details, upsert_businesses
from store.driver import insert_rows, insert_values
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
