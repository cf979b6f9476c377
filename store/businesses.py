"""Bulk upsert of business facts: what a door knows fills in, never erases what another door knew.

A partner's facts are held to more: on a business it did not create, or that Sirene placed since, it fills
blanks in but never overwrites a name, a trade, an address or the commune (those become proposals).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import lru_cache
from itertools import repeat

import orjson
from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from segments.taxonomy import family_for_naf
from segments.territory import commune as commune_info
from store.driver import driver_sql, insert_rows
from store.models import Business
from store.sql import chunks, insert_for_dialect
from triggers.model import BusinessFacts

BUSINESS = Business.__table__

# Columns a later door may fill in; None in the incoming row keeps the stored value (COALESCE).
_MERGED = (
    "name", "naf_code", "naf25_code", "metier_family", "commune_code", "epci_code", "departement_code",
    "region_code", "tranche_effectifs", "employer", "creation_date", "state", "email", "email_source",
    "phone", "phone_source", "street", "postal_code", "city", "address_source",
)


# The keys of `business_row`, in its order.
_ROW_KEYS = ("siret", "siren", "name", "naf_code", "naf25_code", "metier_family", "commune_code", "epci_code",
             "departement_code", "region_code", "tranche_effectifs", "employer", "creation_date", "state",
             "do_not_contact", "email", "email_source", "phone", "phone_source", "phone_consent", "street",
             "postal_code", "city", "address_source")
_STATE = _ROW_KEYS.index("state")


def business_row(facts: BusinessFacts) -> dict:
    """The table row of one BusinessFacts (without its stamps), with métier family and territory derived from
    codes."""
    return dict(zip(_ROW_KEYS, _row_values(facts), strict=True))


def _sqlite_date(value: dt.date | None) -> str | None:
    # A date as SQLAlchemy writes it on SQLite (ISO text; a datetime's date).
    if value is None:
        return None
    return (value.date() if isinstance(value, dt.datetime) else value).isoformat()


def _row_values(facts: BusinessFacts, sqlite: bool = False) -> tuple:
    """`business_row`'s values as a tuple in `_ROW_KEYS` order (with `sqlite`, as SQLite's driver takes them: the
    creation date as SQLAlchemy's text, the flags as 0 and 1): the first e-mail and the first phone among the
    contact points, the place from the commune code when it is known. A tuple, not a dict: the partner API's
    batches make 500 rows each."""
    naf, contacts = facts.naf_code, facts.contacts
    email = email_source = phone = phone_source = None
    phone_consent = False
    for contact in contacts:
        if contact.kind == "email":
            if not email:
                email, email_source = contact.value, contact.source
        elif contact.kind == "phone" and not phone:
            phone, phone_source, phone_consent = contact.value, contact.source, contact.consent
    info = commune_info(facts.commune_code) if facts.commune_code else None
    created, employer, do_not_contact = facts.creation_date, facts.employer, bool(facts.do_not_contact)
    if sqlite:
        if created is not None:
            created = created.isoformat() if type(created) is dt.date else _sqlite_date(created)
        # What SQLAlchemy sends for a BOOLEAN on SQLite; the driver binds an int directly, a bool only after
        # looking it up among its adapters (about 0.25 µs a value, three a row).
        employer = None if employer is None else int(employer)
        do_not_contact, phone_consent = int(do_not_contact), 1 if phone_consent else 0
    return (facts.siret, facts.siret[:9], facts.name, naf, facts.naf25_code,
            family_for_naf(naf) if naf else None,
            info.code if info else None, info.epci if info else None, info.departement if info else None,
            info.region if info else None,
            facts.tranche_effectifs, employer, created, facts.state, do_not_contact,
            email, email_source, phone, phone_source, phone_consent, facts.street, facts.postal_code, facts.city,
            contacts[0].source if facts.street and contacts else None)


# Registry facts: a partner fills them in on a business it does not own, never overwrites them.
_REGISTRY = (
    "name", "naf_code", "naf25_code", "metier_family", "tranche_effectifs", "employer", "creation_date",
    "street", "postal_code", "city", "address_source",
)
_PLACE = ("commune_code", "epci_code", "departement_code", "region_code")
# Contact points: a partner's newer address replaces the stored one (opt-outs follow the business).
_CONTACT = ("email", "email_source", "phone", "phone_source")
# Details a partner may propose without applying them (see `partner_may_place` and `BusinessProposal`).
PROPOSED = ("name", "naf_code", "commune_code", "street", "postal_code", "city")


def merge_row(old: dict, new: dict) -> dict:
    """Two rows for one SIRET merged: what the later one says wins, what it leaves out keeps the earlier value."""
    out = dict(old)
    for key, value in new.items():
        if key in ("do_not_contact", "phone_consent"):
            out[key] = bool(old.get(key)) or bool(value)
        elif value is not None:
            out[key] = value
    return out


def upsert_businesses(conn: Connection, facts: Iterable[BusinessFacts], chunk: int = 500, *,
                      created_by: str | None = None, now: dt.datetime) -> dict[str, int]:
    """Insert or merge businesses at `now`; returns {siret: business id} for every SIRET given.

    Without `created_by` (Sirene-like trusted loads) what is given fills in and replaces what is stored.
    With it (a partner's events, "partner:<id>") the row is marked as that partner's when it creates it,
    and on an existing business the partner only fills registry facts in, changes the place only of its own
    business not yet placed by Sirene (or of one nobody placed), and replaces contact points.
    An absent detail (None) never erases a stored one, within a batch as across batches.
    """
    sqlite_driver = conn.dialect.name == "sqlite" and conn.dialect.driver == "pysqlite"
    partner = created_by is not None
    # The rows as tuples (`_row_values`): dicts only for the statement of many rows (`_dict_rows`).
    by_siret: dict[str, tuple] = {}
    for f in facts:
        values = _row_values(f, sqlite_driver)
        known = by_siret.get(f.siret)
        by_siret[f.siret] = _merged_values(known, values, sqlite_driver) if known else values
    ids: dict[str, int] = {}
    rows = [by_siret[s] for s in sorted(by_siret)]  # one lock order for concurrent batches
    # Rows that state "active"/"closed" may change it; rows that do not keep the stored state. A partner closes
    # a business with a closure event, never with its details: its rows state nothing.
    with_state = [] if partner else [r for r in rows if r[_STATE] is not None]
    without_state = rows if partner else [r for r in rows if r[_STATE] is None]
    for group, sets_state in ((with_state, True), (without_state, False)):
        for part in chunks(group, chunk):
            if sqlite_driver:
                ids.update(_sqlite_upsert(conn, part, sets_state, created_by, now))
                continue
            # DO UPDATE returns the row whether it was inserted or merged: no second query for the ids.
            result = insert_rows(conn, _upsert(conn.dialect.name, sets_state, partner),
                                 _dict_rows(part, created_by, now))
            ids.update({siret: id_ for id_, siret in result})
    return ids


def _merged_values(old: tuple, new: tuple, sqlite: bool) -> tuple:
    # Two rows for one SIRET in one call (rare): `merge_row` on their dicts, the flags as 0/1 again for SQLite.
    merged = merge_row(dict(zip(_ROW_KEYS, old, strict=True)), dict(zip(_ROW_KEYS, new, strict=True))).values()
    return tuple(int(value) if sqlite and type(value) is bool else value for value in merged)


def _dict_rows(rows: list[tuple], created_by: str | None, now: dt.datetime) -> list[dict]:
    """The rows of `upsert_businesses` as the statement's dicts: the partner's mark, the stamps, the state."""
    out = []
    for values in rows:
        row = dict(zip(_ROW_KEYS, values, strict=True))
        if created_by is not None:
            row["created_by"] = created_by
            row["state"] = None
        row["created_at"] = row["updated_at"] = now
        row["state"] = row["state"] or "active"
        out.append(row)
    return out


def _sqlite_upsert(conn: Connection, rows: list[tuple], sets_state: bool, created_by: str | None,
                   now: dt.datetime) -> dict[str, int]:
    """`rows` (`_row_values` for SQLite) upserted on SQLite by the driver's executemany of the one-row
    statement, then their ids read by SIRET (the same rows and ids as the statement of many rows with RETURNING).

    Why: SQLite runs one statement holding 500 rows of VALUES about 4 µs a row slower than a one-row statement
    stepped 500 times (15.6-16.8 against 11.8-12.5 µs a business with the read of the ids, at 90,000 businesses),
    and an executemany cannot return rows. Each row's parameters are its values and the call's constants (the
    stamps, the partner, the state "active" of rows that state nothing, the defaults), laid out by C-level `zip`s
    and numbered in the statement (`_sqlite_upsert_sql`). A column that no row of the chunk gives (None throughout:
    a partner never gives the NAF 2025 code nor says whether it employs) is written NULL in the statement rather
    than bound row after row: the driver binds None only after looking it up among its adapters (about 0.25 µs a
    value, four or five in a partner's row)."""
    if now.utcoffset() is None:
        raise ValueError("Datetime values must have timezone information.")  # as the UTCDateTime columns say
    # The values as SQLAlchemy writes them on SQLite: the moment in UTC without its offset.
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    given = {"created_at": stamp, "updated_at": stamp, "created_by": created_by, "state": "active"}
    count = len(rows)
    columns = list(zip(*rows, strict=True))
    unbound = {i for i, values in enumerate(columns) if values[0] is None and values.count(None) == count}
    if not sets_state:
        unbound.add(_STATE)  # rows that state nothing: "active" when created, a constant of the call
    sql, constants = _sqlite_upsert_sql(sets_state, created_by is not None, frozenset(unbound))
    bound = [values for i, values in enumerate(columns) if i not in unbound]
    bound += [repeat(given[name] if name in given else value, count) for name, value in constants]
    driver_sql(conn, sql, list(zip(*bound, strict=True)))
    sirets = orjson.dumps([values[0] for values in rows]).decode()  # a tenth of json.dumps' time
    return dict(driver_sql(conn, "SELECT siret, id FROM business WHERE siret IN (SELECT value FROM json_each(?))",
                           (sirets,)).rows)


@lru_cache(maxsize=64)
def _sqlite_upsert_sql(sets_state: bool, partner: bool,
                       unbound: frozenset[int]) -> tuple[str, tuple[tuple[str, object], ...]]:
    """The one-row upsert (`_upsert`, without RETURNING) on SQLite with numbered placeholders: first a row's values
    in `_ROW_KEYS` order but for the `unbound` positions (NULL in the statement; the state of rows that state
    nothing is a constant), then the constants of the call, named in order (with the constant default of each
    column the rows leave out, sent as SQLAlchemy would send it)."""
    columns = (*_ROW_KEYS, *(("created_by",) if partner else ()), "created_at", "updated_at")
    compiled = _upsert_statement("sqlite", sets_state, partner).compile(
        dialect=sqlite.dialect(paramstyle="qmark"), column_keys=list(columns))
    names = tuple(compiled.positiontup or ())
    pieces = compiled.string.split("?")
    if len(pieces) != len(names) + 1:
        raise ValueError("business upsert: a placeholder outside the VALUES clause")
    kept = [name for i, name in enumerate(_ROW_KEYS) if i not in unbound]
    marks = {name: f"?{i + 1}" for i, name in enumerate(kept)}
    # An unbound state is that of rows that state nothing: "active" when created, a constant of the call.
    marks.update((name, "NULL") for i, name in enumerate(_ROW_KEYS) if i in unbound and name != "state")
    constants: list[tuple[str, object]] = []
    for name in names:
        if name in marks:
            continue
        if name in columns:
            value = None  # the stamps, the partner, the state: given per call
        else:
            default = BUSINESS.c[name].default  # a KeyError here: a bind outside the VALUES clause
            if default is None or not default.is_scalar:
                raise ValueError(f"business.{name}: no constant default to send")
            value = default.arg
            if isinstance(value, bool):
                value = int(value)  # as `_row_values` gives the flags for SQLite
        marks[name] = f"?{len(kept) + len(constants) + 1}"
        constants.append((name, value))
    sql = pieces[0] + "".join(f"{marks[name]}{piece}" for name, piece in zip(names, pieces[1:], strict=True))
    return sql, tuple(constants)


@lru_cache(maxsize=16)
def _upsert(dialect: str, sets_state: bool, partner: bool = False):
    # Built once per dialect: constructing this statement costs more than running it for one row.
    return _upsert_statement(dialect, sets_state, partner).returning(BUSINESS.c.id, BUSINESS.c.siret)


def _upsert_statement(dialect: str, sets_state: bool, partner: bool):
    """INSERT ... ON CONFLICT (siret) DO UPDATE with the merge rules of `upsert_businesses` (no RETURNING)."""
    stmt = insert_for_dialect(dialect, BUSINESS)
    excluded = stmt.excluded
    b = BUSINESS.c
    if partner:
        # The partner's own business, not placed by Sirene yet (Sirene always says whether it is a head office).
        owner = and_(b.head_office.is_(None), b.created_by == excluded.created_by)
        may_place = and_(excluded.commune_code.is_not(None),
                         or_(owner, and_(b.commune_code.is_(None), b.head_office.is_(None))))
        update = {c: case((owner, func.coalesce(excluded[c], b[c])), else_=func.coalesce(b[c], excluded[c]))
                  for c in _REGISTRY}
        update.update({c: case((may_place, excluded[c]), else_=b[c]) for c in _PLACE})
        update.update({c: func.coalesce(excluded[c], b[c]) for c in _CONTACT})
    else:
        update = {c: func.coalesce(excluded[c], b[c]) for c in _MERGED if c != "state"}
        if sets_state:
            update["state"] = excluded.state
    update["updated_at"] = excluded.updated_at
    # A "not to contact" mark is sticky; consent once given by a partner stays true.
    update["do_not_contact"] = b.do_not_contact | excluded.do_not_contact
    update["phone_consent"] = b.phone_consent | excluded.phone_consent
    return stmt.on_conflict_do_update(index_elements=["siret"], set_=update)


@dataclass(frozen=True, slots=True)
class StoredDetails:
    """What the store knows of a business before a partner's event changes it."""

    id: int
    siret: str
    name: str | None
    naf_code: str | None
    commune_code: str | None
    street: str | None
    postal_code: str | None
    city: str | None
    email: str | None
    phone: str | None
    head_office: bool | None
    created_by: str | None

    def owned_by(self, source: str) -> bool:
        """True when `source` ("partner:<id>") created it and Sirene has not placed it since."""
        return self.head_office is None and self.created_by == source

    def partner_may_place(self, source: str) -> bool:
        """True when a commune sent by `source` is applied (its own business, or one nobody placed)."""
        return self.owned_by(source) or (self.commune_code is None and self.head_office is None)


@lru_cache(maxsize=1)
def _details_query():
    # Built once (its construction cost more than running it for a single-event request); the SIRETs are an
    # expanding parameter.
    cols = [BUSINESS.c[f.name] for f in fields(StoredDetails)]
    return select(*cols).where(BUSINESS.c.siret.in_(bindparam("sirets", expanding=True)))


_DETAILS_SQLITE = ("SELECT " + ", ".join(f"business.{f.name}" for f in fields(StoredDetails))
                   + " FROM business WHERE business.siret IN (SELECT value FROM json_each(?))")


def stored_details(conn: Connection, sirets: Iterable[str]) -> dict[str, StoredDetails]:
    """The stored details of the known businesses among `sirets` (one query per 900; on SQLite one query, the
    SIRETs given as one JSON array: the statement with an expanding list cost more than its run)."""
    out: dict[str, StoredDetails] = {}
    wanted = sorted(set(sirets))
    if wanted and conn.dialect.name == "sqlite" and conn.dialect.driver == "pysqlite":
        # head_office (a BOOLEAN) comes back from the driver as 0/1: as SQLAlchemy reads it, a bool.
        for row in driver_sql(conn, _DETAILS_SQLITE, (orjson.dumps(wanted).decode(),)).rows:
            *first, head_office, created_by = row
            out[row[1]] = StoredDetails(*first, None if head_office is None else bool(head_office), created_by)
        return out
    for part in chunks(wanted, 900):
        for row in conn.execute(_details_query(), {"sirets": part}):
            out[row.siret] = StoredDetails(*row)
    return out


def partner_proposals(stored: StoredDetails, facts: BusinessFacts, source: str) -> list[tuple[str, str | None, str]]:
    """(field, stored value, proposed value) for each detail `facts` would change but a partner may not.

    Mirrors the partner upsert: registry facts only fill in, the place changes only where the partner
    may place (`StoredDetails.partner_may_place`).
    """
    if stored.owned_by(source):
        return []
    row = business_row(facts)
    out = []
    for name in PROPOSED:
        proposed, current = row.get(name), getattr(stored, name)
        if proposed is None or proposed == current:
            continue
        if name == "commune_code":
            if not stored.partner_may_place(source):
                out.append((name, current, proposed))
        elif current is not None:
            out.append((name, current, str(proposed)))
    return out
