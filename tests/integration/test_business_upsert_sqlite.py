"""On SQLite, businesses are upserted by the driver's executemany of a one-row statement and their ids read back
(`store.businesses._sqlite_upsert`): the stored rows, byte for byte, and the ids returned are those of the
statement of many rows with RETURNING (`store.driver.insert_rows`), for new businesses and for merges, by a
trusted door and by a partner's rules."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import create_engine

import store.businesses as businesses
from store.businesses import _upsert, upsert_businesses
from store.driver import insert_rows
from store.migrate import upgrade
from triggers.model import BusinessFacts, ContactPoint

PARIS = dt.timezone(dt.timedelta(hours=1))
SIRETS = ("73282932000074", "35600000000048", "55208131766522", "44306184100047")


def _facts(siret: str, n: int, **more) -> BusinessFacts:
    contacts = [ContactPoint("email", f"contact{n}@exemple.fr", "bge", n % 2 == 0)]
    if n % 3 == 0:
        contacts.append(ContactPoint("phone", f"+3361234567{n % 10}", "bge", True))
    values = {"name": f"Atelier {n}", "naf_code": "10.71C", "commune_code": "35238",
              "creation_date": dt.date(2026, 10, n + 1), "employer": n % 2 == 1, "street": "2 rue Haute",
              "postal_code": "35000", "city": "Rennes", "contacts": contacts} | more
    return BusinessFacts(siret=siret, **values)


def _run(url: str) -> tuple[list[dict[str, int]], list[tuple]]:
    upgrade(url)
    engine = create_engine(url)
    returned = []
    with engine.begin() as conn:
        returned.append(upsert_businesses(conn, [_facts(s, i, state="active") for i, s in enumerate(SIRETS[:2])],
                                          now=dt.datetime(2026, 11, 3, 10, 0, 1, 250, PARIS)))
        # A partner: a new business, one it did not create (registry facts only fill in), a name left out.
        returned.append(upsert_businesses(
            conn, [_facts(SIRETS[1], 5, name=None, commune_code="35047"), _facts(SIRETS[2], 6),
                   _facts(SIRETS[0], 7, naf_code=None, creation_date=None, contacts=[])],
            created_by="partner:7", now=dt.datetime(2026, 11, 4, 8, 30, tzinfo=dt.UTC)))
        # A trusted door again: closes one, adds one, the same SIRET twice in one call.
        returned.append(upsert_businesses(
            conn, [_facts(SIRETS[0], 8, state="closed", do_not_contact=True), _facts(SIRETS[3], 9),
                   _facts(SIRETS[3], 10, name=None)], now=dt.datetime(2026, 11, 5, 23, 59, 59, tzinfo=dt.UTC)))
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.exec_driver_sql("SELECT * FROM business ORDER BY id")]
    engine.dispose()
    return returned, stored


def test_the_sqlite_upsert_stores_what_the_returning_statement_stores(tmp_path, monkeypatch):
    taken = []
    fast = businesses._sqlite_upsert
    monkeypatch.setattr(businesses, "_sqlite_upsert", lambda *a: taken.append(len(a[1])) or fast(*a))
    returned, stored = _run(f"sqlite:///{tmp_path / 'fast.db'}")
    assert taken == [2, 3, 1, 1]  # every chunk took the executemany path (the third call: with and without a state)

    def returning(conn, rows, sets_state, created_by, now):
        dict_rows = businesses._dict_rows(rows, created_by, now)
        return {siret: id_ for id_, siret in insert_rows(conn, _upsert("sqlite", sets_state, created_by is not None),
                                                         dict_rows)}

    monkeypatch.setattr(businesses, "_sqlite_upsert", returning)
    expected_returned, expected_stored = _run(f"sqlite:///{tmp_path / 'returning.db'}")
    assert returned == expected_returned
    assert stored == expected_stored
    assert [row[1] for row in stored] == [SIRETS[1], SIRETS[0], SIRETS[2], SIRETS[3]]  # ids in SIRET order per call


def test_no_flag_nor_column_without_a_value_is_bound_row_by_row(tmp_path, monkeypatch):
    """The driver binds None and bools only after looking them up among its adapters: the executemany gets the
    flags as 0 and 1, and a column that no row of the chunk gives is NULL in the statement, not a parameter."""
    bound = []
    real = businesses.driver_sql

    def spy(conn, sql, params=()):
        if isinstance(params, list):
            bound.append((sql, params))
        return real(conn, sql, params)

    monkeypatch.setattr(businesses, "driver_sql", spy)
    _run(f"sqlite:///{tmp_path / 'bound.db'}")
    assert len(bound) == 4
    for sql, params in bound:
        assert not any(type(value) is bool for row in params for value in row)
        assert not [i for i in range(len(params[0])) if all(row[i] is None for row in params)]
        assert "NULL" in sql.split("ON CONFLICT")[0]  # the NAF 2025 code, given by no row here
