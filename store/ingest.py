"""Bulk writers and readers of the file ingesters (orchestrator/app/ingest.py): businesses from Sirene, events
from Sirene, BODACC and the regulatory calendar, pending events resolved when their business arrives.

Built for national volumes: statements are built once with SQLAlchemy Core (ON CONFLICT upserts on SQLite and
PostgreSQL) and run with the driver's executemany on plain tuples (no per-row processing); PostgreSQL receives
the Sirene rows by COPY into a staging table. Every function takes the caller's connection: the ingest decides
what one transaction holds (one chunk), so a killed ingest run again ends in the same state.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    String,
    and_,
    any_,
    bindparam,
    case,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection, Engine

from store.driver import driver_sql
from store.models import Business, Partner, TriggerEvent

try:  # the PostgreSQL driver, when installed (the COPY paths talk to it directly)
    from psycopg.errors import UniqueViolation
except ImportError:  # pragma: no cover - SQLite-only installs
    UniqueViolation = None  # type: ignore[assignment,misc]
from store.sql import insert_for
from triggers.model import EventIn

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__
PARTNERS = Partner.__table__

# Business columns the Sirene ingest writes, in row order (`SireneStore.upsert`).
SIRENE_COLUMNS = (
    "siret",
    "siren",
    "name",
    "naf_code",
    "naf25_code",
    "metier_family",
    "commune_code",
    "epci_code",
    "departement_code",
    "region_code",
    "tranche_effectifs",
    "employer",
    "creation_date",
    "state",
    "do_not_contact",
    "lifecycle_stage",
    "street",
    "postal_code",
    "city",
    "address_source",
    "head_office",
    "categorie_entreprise",
    "categorie_juridique",
    "phone_consent",
    "created_at",
    "updated_at",
)
# The last SIRENE_COLUMNS, the same on every row of a run: a first load's rows leave them out (`insert_new`).
ROW_CONSTANTS = ("phone_consent", "created_at", "updated_at")
# Columns that locate or name a person: erased when Sirene says "not to contact" (partial diffusion).
_PERSONAL = (
    "name",
    "commune_code",
    "epci_code",
    "departement_code",
    "region_code",
    "street",
    "postal_code",
    "city",
    "address_source",
)
_MERGED = (
    "naf_code",
    "naf25_code",
    "metier_family",
    "tranche_effectifs",
    "employer",
    "creation_date",
    "lifecycle_stage",
    "head_office",
    "categorie_entreprise",
    "categorie_juridique",
)
# What a stored row is compared on to decide "unchanged" (`SireneStore.known` returns them in this order).
COMPARED = (
    "name",
    "naf_code",
    "naf25_code",
    "commune_code",
    "tranche_effectifs",
    "employer",
    "creation_date",
    "state",
    "do_not_contact",
    "street",
    "postal_code",
    "city",
    "lifecycle_stage",
    "head_office",
    "categorie_entreprise",
    "categorie_juridique",
)
# Where each compared column sits in a row of SIRENE_COLUMNS, and in a compared tuple.
COMPARED_INDEX = tuple(SIRENE_COLUMNS.index(c) for c in COMPARED)
COMPARED_AT = {name: i for i, name in enumerate(COMPARED)}

EVENT_COLUMNS = (
    "source",
    "partner_id",
    "external_id",
    "type",
    "siret",
    "siren",
    "business_id",
    "occurred_on",
    "received_at",
    "status",
    "planned",
    "payload",
)

# `status = 'pending'` written in the statement's text, as the partial indexes of the pending events say it
# (`ix_triggerevent_pending_siret`, `..._siren`): with a bound value the planners may not prove a query stays
# within them (SQLite plans before it sees the value, PostgreSQL's generic plans never see it).
IS_PENDING = EVENTS.c.status == literal_column("'pending'")
# What follows a SIREN in the last SIRET of its establishments (`siren_range`).
_LAST_NIC = "99999"

_STAGING = "declic_ingest_business"  # PostgreSQL temporary staging table (per session)
_MAX_IN = 30000  # values per look-up statement (`_among`)


# --- shared helpers ------------------------------------------------------------------------------


def _light_table(name: str, columns: Sequence[str]):
    # Untyped columns: the driver gets values as they are (ISO dates, bools), no per-value processing.
    return table(name, *[column(c) for c in columns])


def now_param(conn: Connection, now: dt.datetime) -> Any:
    """`now` (aware UTC, the caller's clock) as the driver writes it in a row (text on SQLite, as SQLAlchemy's
    DateTime does)."""
    if conn.dialect.name == "sqlite":
        # The text SQLAlchemy's DateTime writes on SQLite (UTC, no offset).
        return now.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return now


def _as_params(conn: Connection, columns: Sequence[str], rows: list[tuple]) -> list:
    if conn.dialect.paramstyle in ("qmark", "format", "numeric"):
        return rows
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _executemany(conn: Connection, sql: str, columns: Sequence[str], rows: list[tuple]) -> None:
    if rows:
        conn.exec_driver_sql(sql, _as_params(conn, columns, rows))


def _in_chunks(values: Sequence[Any], size: int = _MAX_IN) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _among(conn: Connection, col: Any, values: Iterable[Any]) -> Any:
    """`col IN values` as one statement text whatever the number of values: an array on PostgreSQL, a JSON array
    read by json_each on SQLite.

    Why not IN (?, ?, ...): every distinct number of values is a new statement text, and the drivers keep prepared
    statements by text (sqlite3 keeps 128 of them): with thousands of values each, a legal-unit stock grew the
    process by 5 MB a chunk (650 MB for 3.3 million rows); psycopg parses such a statement anew every time."""
    values = list(values)
    if conn.dialect.name == "postgresql":
        return col == any_(literal(values, ARRAY(col.type)))
    return col.in_(select(column("value")).select_from(func.json_each(json.dumps(values))))


def siren_range(siret: Any, siren: Any) -> Any:
    """`siret` among the SIRETs of `siren` (a value or a column), as a range of the SIRET index: a SIRET is its
    SIREN followed by five digits (the NIC), so they sort from the SIREN itself to the SIREN followed by 99999, in
    any collation. Why: an index of the SIREN too cost every business written one more random insert."""
    return and_(siret >= siren, siret <= siren + _LAST_NIC)


@contextlib.contextmanager
def _without_jit(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, no JIT compilation for the statements inside (then as it was, in this transaction).

    Why: the planner cannot know that a SIREN's range of the SIRET index (`siren_range`) holds one SIRET or a few;
    it estimates thousands of rows per SIREN, so a join to 30,000 SIRENs looks costly enough to be compiled: 0.1 to
    0.3 s of JIT for a 60 ms nested loop of index look-ups (legal units: 3.3-3.6 -> 4.8 s of server CPU for 266,666
    rows without this). After an error the transaction is rolled back, and the setting with it."""
    if conn.dialect.name != "postgresql":
        yield
        return
    was = conn.exec_driver_sql("SELECT current_setting('jit')").scalar()
    conn.exec_driver_sql("SELECT set_config('jit', 'off', true)")
    yield
    conn.exec_driver_sql("SELECT set_config('jit', %(was)s, true)", {"was": was})


def _listed(conn: Connection, values: Iterable[str]) -> Any:
    """A FROM item listing text `values` in a column `value` (one statement text whatever their number, as
    `_among`): unnest of an array on PostgreSQL, json_each on SQLite."""
    value = column("value", String)
    if conn.dialect.name == "postgresql":
        return func.unnest(literal(list(values), ARRAY(String()))).table_valued(value).render_derived()
    return func.json_each(json.dumps(list(values))).table_valued(value)


def _of_sirens(conn: Connection, sirens: Iterable[str]) -> tuple[Any, Any]:
    """The businesses of these SIRENs (`siren_range` per SIREN): a FROM item to select from, and its SIREN
    column (the SIREN asked)."""
    asked = _listed(conn, sirens)
    return asked.join(BUSINESS, siren_range(BUSINESS.c.siret, asked.c.value)), asked.c.value


_JSON_VALUES = "SELECT value FROM json_each(?)"  # a JSON array's values, for driver-level SQL on SQLite (`_among`)


def _iso(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _event_sql(conn: Connection) -> str:
    light = _light_table("triggerevent", EVENT_COLUMNS)
    stmt = insert_for(conn, light).on_conflict_do_nothing(index_elements=["source", "external_id"])
    return str(stmt.compile(dialect=conn.dialect))


def event_row(e: EventIn, business_id: int | None, now: Any, partner_id: int | None = None) -> tuple:
    """The row of one event (EVENT_COLUMNS order): accepted when its business is known, else pending."""
    return (
        e.source,
        partner_id,
        e.external_id,
        e.type,
        e.siret,
        e.siren or (e.siret[:9] if e.siret else None),
        business_id,
        e.occurred_on.isoformat(),
        now,
        "accepted" if business_id else "pending",
        False,
        json.dumps(e.payload, ensure_ascii=False, default=str),
    )


def insert_new_events(conn: Connection, rows: list[tuple]) -> list[tuple]:
    """Insert the event rows not stored yet (unique source + external_id); returns those rows.

    Why a read first: it tells which rows are new with one indexed query and a plain executemany,
    where RETURNING would cost a round trip per batch and per-row processing; ON CONFLICT DO NOTHING
    still guards against a concurrent writer (the data stays right, only that run's counts could
    include the other's rows).
    """
    if not rows:
        return []
    by_source: dict[str, list[str]] = {}
    for row in rows:
        by_source.setdefault(row[0], []).append(row[2])
    existing: set[tuple[str, str]] = set()
    postgres = conn.dialect.name == "postgresql"
    for source, ext_ids in by_source.items():
        for part in _in_chunks(ext_ids):
            if postgres:
                found = conn.exec_driver_sql(
                    "SELECT external_id FROM triggerevent"
                    " WHERE source = %(s)s AND external_id = ANY(%(ids)s)",
                    {"s": source, "ids": list(part)},
                )
            else:
                found = conn.exec_driver_sql(
                    f"SELECT external_id FROM triggerevent WHERE source = ? AND external_id IN ({_JSON_VALUES})",
                    (source, json.dumps(list(part))),
                )
            existing.update((source, x) for (x,) in found)
    new: list[tuple] = []
    for row in rows:
        key = (row[0], row[2])
        if key not in existing:
            existing.add(key)  # the same id twice in one batch is stored once
            new.append(row)
    _executemany(conn, _event_sql(conn), EVENT_COLUMNS, new)
    return new


# --- Sirene establishments -----------------------------------------------------------------------


class _RowsOf:
    """A one-row INSERT (ON CONFLICT included) run for many rows as statements of ROWS_PER_STATEMENT rows each
    (SQLite).

    Why: sqlite3's executemany steps and resets the statement once per row; with forty rows a statement, SQLite's
    per-statement work is paid once for forty: a first load's inserts take 22 % less CPU (1,000,000 business rows,
    the two ways alternated chunk by chunk in one process). Not for the partner API's upsert, whose rows land at
    random places of a grown store: there forty rows a statement measured 11 % slower."""

    ROWS_PER_STATEMENT = 40

    def __init__(self, sql: str) -> None:
        head, rest = sql.split(" VALUES ", 1)
        row, tail = rest.split(") ON CONFLICT ", 1)
        self.single = sql
        self.many = f"{head} VALUES {', '.join([row + ')'] * self.ROWS_PER_STATEMENT)} ON CONFLICT {tail}"

    def run(self, conn: Connection, values: list, width: int) -> None:
        """Insert the rows given as their values row after row (`width` a row, the statement's placeholders in
        order)."""
        step = self.ROWS_PER_STATEMENT * width
        full = len(values) - len(values) % step
        driver_sql(conn, self.many, [values[i:i + step] for i in range(0, full, step)])
        driver_sql(conn, self.single, [values[i:i + width] for i in range(full, len(values), width)])


class SireneStore:
    """The store side of one Sirene ingest: statements built once, the pending events still waiting for their
    business, the partners' territories read once."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._staging_sql: str | None = None
        self._new_sql: tuple[Any, _RowsOf] | None = None  # (now, the first load's statement at that moment)
        self._partner_territory: dict[int, tuple[str, ...]] = {}
        with engine.connect() as conn:
            self.dialect = conn.dialect.name
            self.upsert_sql = self._upsert_sql(conn)
            self.event_sql = _event_sql(conn)
            rows = conn.execute(select(EVENTS.c.siret, EVENTS.c.siren).where(IS_PENDING)).all()
        self.pending_sirets = {s for s, _ in rows if s}
        self.pending_sirens = {n for s, n in rows if n and not s}

    def _upsert_sql(self, conn: Connection, from_staging: bool = False, constants: dict[str, Any] | None = None,
                    empty_is_null: bool = False) -> str:
        light = _light_table("business", SIRENE_COLUMNS)
        stmt = insert_for(conn, light)
        if constants:
            # Columns the same on every row written in the statement's text: the rows carry only the others.
            stmt = stmt.values({c: constants[c] if c in constants
                                else func.nullif(bindparam(c), literal_column("''")) if empty_is_null
                                else bindparam(c) for c in SIRENE_COLUMNS})
        if from_staging:
            staged = _light_table(_STAGING, SIRENE_COLUMNS)
            stmt = insert_for(conn, light).from_select(list(SIRENE_COLUMNS), select(*staged.c))
        ex = stmt.excluded
        target = {c: light.c[c] for c in SIRENE_COLUMNS}
        sets: dict[str, Any] = {}
        for c in _PERSONAL:
            sets[c] = case((ex.do_not_contact, None), else_=func.coalesce(ex[c], target[c]))
        for c in _MERGED:
            sets[c] = func.coalesce(ex[c], target[c])
        sets["state"] = ex.state
        # "Not to contact" is sticky: it may also come from a legal objection recorded elsewhere.
        sets["do_not_contact"] = target["do_not_contact"] | ex.do_not_contact
        sets["updated_at"] = ex.updated_at
        return str(stmt.on_conflict_do_update(index_elements=["siret"], set_=sets).compile(dialect=conn.dialect))

    def begin_chunk(self, conn: Connection) -> None:
        """Session settings for a chunk's transaction."""
        if self.dialect == "sqlite":
            # Why: on a store that is not empty the secondary indexes (commune, EPCI, région...) take
            # random inserts; a 64 MB page cache keeps their hot pages in memory, and rarer checkpoints
            # write each such page once rather than once per chunk.
            conn.exec_driver_sql("PRAGMA cache_size=-65536")
            conn.exec_driver_sql("PRAGMA wal_autocheckpoint=20000")

    @property
    def empty_is_null(self) -> bool:
        """Whether `insert_new` reads an empty text as NULL (SQLite), so its rows may carry "" for None."""
        return self.dialect == "sqlite"

    def insert_new(self, conn: Connection, values: list, now: Any) -> None:
        """Write a first load's rows, given as their values row after row: SIRENE_COLUMNS but the last three
        (ROW_CONSTANTS, which this writes: no phone consent, created and updated `now`, as `now_param` gives it),
        none of them expected to be stored. Where `empty_is_null`, an empty text is stored as NULL.

        Why: on SQLite the constants go in the statement's text, so the driver binds 23 values a row instead of 26
        and the rows come from the parser process as they are; the upsert still merges a SIRET stored after all.
        Why "" for None: sqlite3 binds a str at once but sends None through its adapter registry (a tuple built and
        looked up, two attribute look-ups): with a seventh of the values empty, NULLIF(?, '') in the statement
        spares the inserts 3-6 % of their CPU (measured; no Sirene field the rows carry is ever "")."""
        width = len(SIRENE_COLUMNS) - len(ROW_CONSTANTS)
        if self.dialect == "sqlite":
            if self._new_sql is None or self._new_sql[0] != now:
                stamp = literal_column("'" + now.replace("'", "") + "'")
                self._new_sql = (now, _RowsOf(self._upsert_sql(conn, constants={
                    "phone_consent": literal_column("0"), "created_at": stamp, "updated_at": stamp},
                    empty_is_null=True)))
            self._new_sql[1].run(conn, values, width)
        else:
            rows = zip(*[iter(values)] * width, strict=True)  # consecutive values, `width` at a time
            self.upsert(conn, [(*r, False, now, now) for r in rows], new=True)

    def upsert(self, conn: Connection, rows: list[tuple], new: bool = False) -> None:
        """Upsert business rows (SIRENE_COLUMNS order) by SIRET, with the merge rules of `_upsert_sql`.

        `new`: the caller expects none of these SIRETs to be stored (a first load); on PostgreSQL they are then
        copied straight into the table, and the chunk falls back to the upsert if one was stored after all."""
        if self.dialect != "postgresql":
            _executemany(conn, self.upsert_sql, SIRENE_COLUMNS, rows)
        elif not (new and rows and self._copy_new(conn, rows)):
            self._copy_upsert(conn, rows)

    def _copy_new(self, conn: Connection, rows: list[tuple]) -> bool:
        # Why: a first load's rows are all new, and COPY into the table itself spares PostgreSQL the staging table
        # and the per-row conflict check and merge expressions (about half its work per row). A SIRET stored after
        # all (an update file repeating one across chunks) fails the unique index: the savepoint undoes the COPY.
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("SAVEPOINT declic_copy_new")
            try:
                with cur.copy(f"COPY business ({', '.join(SIRENE_COLUMNS)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            except UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT declic_copy_new")
                return False
            cur.execute("RELEASE SAVEPOINT declic_copy_new")
        return True

    def _copy_upsert(self, conn: Connection, rows: list[tuple]) -> None:
        # PostgreSQL: COPY the chunk into a temporary staging table, then one INSERT ... SELECT ...
        # ON CONFLICT. Why: COPY streams rows without a round trip or a parse per row, several times
        # faster than executemany, and the upsert rules stay the same statement as on SQLite.
        if not rows:
            return
        # Each pooled connection has its own temporary tables: make sure this one has it.
        conn.exec_driver_sql(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "
            f"SELECT {', '.join(SIRENE_COLUMNS)} FROM business WITH NO DATA"
        )
        if self._staging_sql is None:
            self._staging_sql = self._upsert_sql(conn, from_staging=True)
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {_STAGING} ({', '.join(SIRENE_COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        conn.exec_driver_sql(self._staging_sql)

    def insert_events(self, conn: Connection, rows: list[tuple]) -> None:
        """Insert event rows (`event_row`), an event already stored being left as it is."""
        _executemany(conn, self.event_sql, EVENT_COLUMNS, rows)

    def known(self, conn: Connection, sirets: list[str]) -> dict[str, tuple[int, tuple]]:
        """Per stored SIRET: its business id and its COMPARED columns as a row of SIRENE_COLUMNS holds them."""
        # Driver-level query with raw values (dates as text on SQLite, date objects on PostgreSQL):
        # SQLAlchemy's expanding IN costs ~5 µs a value, more than the lookup itself.
        names = ", ".join(("siret", "id", *COMPARED))
        out: dict[str, tuple[int, tuple]] = {}
        cursor_rows: Iterable[Any]
        for part in _in_chunks(sirets):
            if self.dialect == "postgresql":
                cursor_rows = conn.exec_driver_sql(
                    f"SELECT {names} FROM business WHERE siret = ANY(%(s)s)", {"s": list(part)}
                )
            else:
                cursor_rows = conn.exec_driver_sql(
                    f"SELECT {names} FROM business WHERE siret IN ({_JSON_VALUES})", (json.dumps(list(part)),)
                )
            for row in cursor_rows:
                out[row[0]] = (row[1], _normalised(row[2:]))
        return out

    def resolve_pending(
        self, conn: Connection, sirets: list[str], sirens: list[str], ids: dict[str, int],
        reaches: Callable[[tuple[str, ...], str | None], bool],
    ) -> tuple[list[tuple[int, str, Any]], int]:
        """Attach the pending events of businesses that just arrived (by SIRET, or by SIREN for SIREN-only events,
        which land on the company's first active establishment, head office first).

        A partner's pending event is attached only when `reaches(its territory, the business's commune)`;
        otherwise it is marked `rejected`. Returns the events attached (business id, type, date) and the number
        rejected."""
        targets: dict[int, str | None] = {}  # business id -> the SIRET to set on its SIREN events
        by_business: list[tuple[int, Any]] = []
        for siret in sirets:
            bid = ids.get(siret)
            if bid is None:
                continue
            by_business.append((bid, (EVENTS.c.siret == siret)))
            self.pending_sirets.discard(siret)
        for siren in sirens:
            target = conn.execute(
                select(BUSINESS.c.id, BUSINESS.c.siret)
                .where(siren_range(BUSINESS.c.siret, siren))
                .order_by((BUSINESS.c.state == "active").desc(), BUSINESS.c.head_office.desc(), BUSINESS.c.siret)
                .limit(1)
            ).first()
            if target is None:
                continue
            targets[target.id] = target.siret
            by_business.append((target.id, (EVENTS.c.siren == siren) & EVENTS.c.siret.is_(None)))
            self.pending_sirens.discard(siren)
        if not by_business:
            return [], 0
        communes = dict(conn.execute(select(BUSINESS.c.id, BUSINESS.c.commune_code)
                                     .where(BUSINESS.c.id.in_({b for b, _ in by_business}))).all())
        resolved: list[tuple[int, str, Any]] = []
        rejected = 0
        for bid, which in by_business:
            pending = conn.execute(
                select(EVENTS.c.id, EVENTS.c.partner_id, EVENTS.c.type, EVENTS.c.occurred_on)
                .where(IS_PENDING, which)
            ).all()
            outside = {e.id for e in pending if e.partner_id is not None
                       and not reaches(self._territory(conn, e.partner_id), communes.get(bid))}
            inside = [e for e in pending if e.id not in outside]
            if outside:
                conn.execute(update(EVENTS).where(EVENTS.c.id.in_(sorted(outside))).values(status="rejected",
                                                                                   business_id=None))
                rejected += len(outside)
            if inside:
                values: dict[str, Any] = {"status": "accepted", "business_id": bid}
                if bid in targets:
                    values["siret"] = targets[bid]
                conn.execute(update(EVENTS).where(EVENTS.c.id.in_([e.id for e in inside])).values(**values))
                resolved += [(bid, e.type, e.occurred_on) for e in inside]
        return resolved, rejected

    def _territory(self, conn: Connection, partner_id: int) -> tuple[str, ...]:
        if partner_id not in self._partner_territory:
            self._partner_territory[partner_id] = tuple(
                conn.execute(select(PARTNERS.c.territory).where(PARTNERS.c.id == partner_id)).scalar() or ())
        return self._partner_territory[partner_id]


def _normalised(stored: Sequence[Any]) -> tuple:
    # The COMPARED columns as the driver returns them -> as a row of SIRENE_COLUMNS holds them.
    out = list(stored)
    for i, name in enumerate(COMPARED):
        v = out[i]
        if v is None:
            continue
        if name in ("employer", "do_not_contact", "head_office"):
            out[i] = bool(v)
        elif name == "creation_date" and not isinstance(v, str):
            out[i] = v.isoformat()
    return tuple(out)


_PERSONAL_CMP = frozenset(i for i, c in enumerate(COMPARED) if c in _PERSONAL)
_STATE_CMP = COMPARED.index("state")
_DNC_CMP = COMPARED.index("do_not_contact")


def unchanged(new: tuple, old: tuple) -> bool:
    """True when upserting `new` over `old` (both in COMPARED order) would change nothing."""
    erase = bool(new[_DNC_CMP])
    for i, n in enumerate(new):
        o = old[i]
        if i == _DNC_CMP:
            merged = bool(o) or bool(n)
        elif i == _STATE_CMP:
            merged = n
        elif erase and i in _PERSONAL_CMP:
            merged = None
        else:
            merged = o if n is None else n
        if merged != o:
            return False
    return True


def inherit_category(conn: Connection, sirets: Sequence[str]) -> None:
    """New establishments of a known company take its category and legal form from their siblings (same SIREN).

    Why: both are the legal unit's (StockUniteLegale, read monthly after the establishments); a branch that opens
    between two legal-unit files belongs to the same company, so it has the same e-invoicing dates and legal form.
    """
    if not sirets:
        return
    sibling = BUSINESS.alias("sibling")

    def known(col: str) -> Any:
        return (select(func.max(sibling.c[col]))
                .where(siren_range(sibling.c.siret, BUSINESS.c.siren), sibling.c[col].is_not(None))
                .scalar_subquery())

    with _without_jit(conn):
        for part in _in_chunks(sorted(sirets), 900):
            conn.execute(
                update(BUSINESS)
                .where(_among(conn, BUSINESS.c.siret, part),
                       or_(BUSINESS.c.categorie_entreprise.is_(None), BUSINESS.c.categorie_juridique.is_(None)))
                .values(
                    categorie_entreprise=func.coalesce(BUSINESS.c.categorie_entreprise, known("categorie_entreprise")),
                    categorie_juridique=func.coalesce(BUSINESS.c.categorie_juridique, known("categorie_juridique")))
            )


def closure_dates(conn: Connection, business_ids: Sequence[int]) -> dict[int, str]:
    """Per business, the ISO date of its latest stored closure event (BODACC, partner or Sirene)."""
    out: dict[int, str] = {}
    for part in _in_chunks(sorted(set(business_ids)), 900):
        rows = conn.execute(
            select(EVENTS.c.business_id, func.max(EVENTS.c.occurred_on))
            .where(_among(conn, EVENTS.c.business_id, part), EVENTS.c.type == "closure")
            .group_by(EVENTS.c.business_id)
        )
        out.update((bid, _iso(on)[:10]) for bid, on in rows if on is not None)
    return out


def ids_for(conn: Connection, sirets: Iterable[str]) -> dict[str, int]:
    """The business id of each stored SIRET."""
    out: dict[str, int] = {}
    values = sorted(set(sirets))
    for part in _in_chunks(values):
        for siret, id_ in conn.execute(select(BUSINESS.c.siret, BUSINESS.c.id)
                                       .where(_among(conn, BUSINESS.c.siret, part))):
            out[siret] = id_
    return out


# The indexes kept during a first load. The SIRET one enforces the upsert and finds a SIREN's establishments
# (`siren_range`: pending BODACC events); it receives keys in file order (the stock is sorted by SIREN, so by
# SIRET): inserts append. The paused one is partial over a column no load writes: kept, it costs a test of NULL a
# row; built at the end, a scan of the whole table for an empty index (0.76 s for 1.9 M businesses, 2-3 % of a
# first load).
_KEPT_DURING_LOAD = {"ix_business_siret", "ix_business_paused_until"}


def _deferrable_indexes() -> list:
    return [ix for ix in BUSINESS.indexes if ix.name not in _KEPT_DURING_LOAD]


# SQLite's sorter for CREATE INDEX: runs of this many KiB (it takes the page cache's size), sorted by worker threads,
# one per core up to this many. Why: measured on 1.9 M businesses (2 cores), runs that fit the CPU's caches build the
# two deferred indexes in 3.2 s against 5-6 s with the chunks' 64 MB cache; two worker threads take that to 2.4-2.6 s
# (the parser has finished by then). Four were faster alone (2.2-2.3 s) but slower in whole first loads, beside the
# WAL checkpoints.
_SORT_RUN_KIB = 4096
_SORT_THREADS = 4


def ensure_business_indexes(engine: Engine) -> None:
    """Create any Business index that a killed first load left dropped."""
    with engine.begin() as conn, _sorting(conn):
        for ix in BUSINESS.indexes:
            ix.create(conn, checkfirst=True)


@contextlib.contextmanager
def _sorting(conn: Connection) -> Iterator[None]:
    """SQLite settings for index builds (`_SORT_RUN_KIB`), the connection's own given back after."""
    if conn.dialect.name != "sqlite":
        yield
        return
    cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    threads = conn.exec_driver_sql("PRAGMA threads").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size={-_SORT_RUN_KIB}")
    conn.exec_driver_sql(f"PRAGMA threads={min(_SORT_THREADS, os.cpu_count() or 1)}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")
        conn.exec_driver_sql(f"PRAGMA threads={int(threads)}")


@contextlib.contextmanager
def first_load(engine: Engine) -> Iterator[bool]:
    """On an empty business table, build the secondary indexes once at the end instead of row by row; yields
    whether the table was empty.

    Why: the commune, EPCI, région and département/family indexes take keys in random order; on a
    national load maintaining them row by row costs more than everything else together, while one
    CREATE INDEX at the end sorts once. A kill in between leaves them missing; the next ingest (or
    `ensure_business_indexes`) recreates them before anything else.
    """
    ensure_business_indexes(engine)
    with engine.connect() as conn:
        empty = conn.execute(select(BUSINESS.c.id).limit(1)).first() is None
    if not empty:
        yield False
        return
    with engine.begin() as conn:
        for ix in _deferrable_indexes():
            ix.drop(conn)
    try:
        yield True
    finally:
        ensure_business_indexes(engine)


# --- Sirene legal units --------------------------------------------------------------------------


@dataclass
class CategoryChanges:
    """What `set_legal_units` did with the SIRENs it was given."""

    unknown: int = 0  # SIREN not in the store
    unchanged: int = 0
    changed: int = 0


def set_legal_units(engine: Engine, by_siren: dict[str, tuple[str | None, str | None]], *,
                    now: dt.datetime) -> CategoryChanges:
    """Give every stored establishment of these SIRENs its company's (category, legal form): PME, ETI, GE and INSEE's
    four-digit catégorie juridique, in one transaction. A None keeps what is stored (an unknown value never erases a
    known one); only the SIRENs where something changes are written."""
    out = CategoryChanges()
    if not by_siren:
        return out
    with engine.begin() as conn, _without_jit(conn):
        stored: dict[str, set[tuple[str | None, str | None]]] = {}
        for part in _in_chunks(sorted(by_siren)):
            businesses, asked = _of_sirens(conn, part)
            for siren, category, form in conn.execute(
                select(asked, BUSINESS.c.categorie_entreprise, BUSINESS.c.categorie_juridique).select_from(businesses)
            ):
                stored.setdefault(siren, set()).add((category, form))
        changes: list[tuple[str | None, str | None, str]] = []
        for siren, (category, form) in by_siren.items():
            known = stored.get(siren)
            if known is None:
                out.unknown += 1
            elif all((category or c, form or f) == (c, f) for c, f in known):
                out.unchanged += 1
            else:
                changes.append((category, form, siren))
        if not changes:
            return out
        if conn.dialect.name == "postgresql":
            # One statement for the chunk (an UPDATE per SIREN costs PostgreSQL a round of planning each).
            conn.exec_driver_sql(
                "UPDATE business AS b SET categorie_entreprise = COALESCE(v.category, b.categorie_entreprise),"
                " categorie_juridique = COALESCE(v.form, b.categorie_juridique), updated_at = %(now)s"
                " FROM unnest(%(categories)s::text[], %(forms)s::text[], %(sirens)s::text[])"
                " AS v(category, form, siren)"
                f" WHERE b.siret >= v.siren AND b.siret <= v.siren || '{_LAST_NIC}'"  # `siren_range`
                " AND (b.categorie_entreprise IS DISTINCT FROM COALESCE(v.category, b.categorie_entreprise)"
                " OR b.categorie_juridique IS DISTINCT FROM COALESCE(v.form, b.categorie_juridique))",
                {"now": now, "categories": [c for c, _f, _s in changes], "forms": [f for _c, f, _s in changes],
                 "sirens": [s for _c, _f, s in changes]},
            )
        else:
            # The chunk's changes in a temporary table, then one UPDATE of the businesses whose SIREN is in it: SQLite
            # walks the table and probes the SIRET index in C (`siren_range`; an executemany of UPDATEs costs a
            # statement step and reset per SIREN). Why not UPDATE ... FROM: without statistics SQLite plans it as a
            # scan of the whole business table per chunk.
            conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS declic_legal_unit"
                                 " (siren TEXT PRIMARY KEY, category TEXT, form TEXT)")
            conn.exec_driver_sql("DELETE FROM declic_legal_unit")
            conn.exec_driver_sql("INSERT OR REPLACE INTO declic_legal_unit (category, form, siren) VALUES (?, ?, ?)",
                                 changes)
            merged = ("SELECT COALESCE(u.category, business.categorie_entreprise),"
                      " COALESCE(u.form, business.categorie_juridique)"
                      " FROM declic_legal_unit AS u WHERE u.siren = business.siren")
            conn.exec_driver_sql(
                f"UPDATE business SET (categorie_entreprise, categorie_juridique) = ({merged}), updated_at = ?"
                " WHERE id IN (SELECT b.id FROM declic_legal_unit AS u JOIN business AS b"
                f" ON b.siret >= u.siren AND b.siret <= u.siren || '{_LAST_NIC}')"  # `siren_range`
                f" AND (categorie_entreprise, categorie_juridique) IS NOT ({merged})",
                (now_param(conn, now),),
            )
        out.changed = len(changes)
    return out


# --- SIREN-keyed events (BODACC) and the regulatory calendar -------------------------------------


def businesses_for_sirens(conn: Connection, sirens: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Per SIREN the establishment a SIREN-only event lands on (id, SIRET): active first, head office first."""
    out: dict[str, tuple[int, str, tuple]] = {}
    for part in _in_chunks(sorted(set(sirens))):
        businesses, asked = _of_sirens(conn, part)
        with _without_jit(conn):
            rows = conn.execute(
                select(asked, BUSINESS.c.id, BUSINESS.c.siret, BUSINESS.c.state, BUSINESS.c.head_office)
                .select_from(businesses)
            ).all()
        for siren, id_, siret, state, head in rows:
            rank = (state != "active", not head, siret)
            if siren not in out or rank < out[siren][2]:
                out[siren] = (id_, siret, rank)
    return {k: (v[0], v[1]) for k, v in out.items()}


def contactable_page(engine: Engine, after_id: int, limit: int) -> list[Any]:
    """The next `limit` active businesses that may be contacted, by id after `after_id` (keyset pagination):
    id, siret, tranche_effectifs, state, categorie_entreprise."""
    b = BUSINESS
    with engine.connect() as conn:
        return list(conn.execute(
            select(b.c.id, b.c.siret, b.c.tranche_effectifs, b.c.state, b.c.categorie_entreprise)
            .where(b.c.id > after_id, b.c.state == "active", b.c.do_not_contact.is_(False))
            .order_by(b.c.id)
            .limit(limit)
        ).all())
