"""Persistence of every door in: Sirene, BODACC, partner files and the regulatory calendar.

Each ingest reads its file through the pure parser of its feed, then writes in chunks; one chunk is
one transaction (businesses, events, pending resolutions, cancelled messages together), so an ingest
killed at any moment and run again ends in the same state as one uninterrupted run: committed chunks
are upserts and idempotent inserts (events are unique on source + external_id), and the chunk in
flight was rolled back.

Sirene at national scale: the parser runs in a second process (it is the heavier half) and hands
over chunks of compact records (marshal); this process reads the known state of the chunk's SIRETs
in bulk, runs the snapshot comparison, and writes with driver-level executemany of a statement built
once with SQLAlchemy Core (ON CONFLICT upserts on SQLite and PostgreSQL). Known rows that did not
change are not written.

Events whose business is not known yet (a BODACC SIREN, a partner SIRET) are stored as `pending`;
the Sirene ingest resolves them when the business arrives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import marshal
import multiprocessing as mp
import os
import queue as queue_mod
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, case, column, func, or_, select, table, update
from sqlalchemy.engine import Connection, Engine

from segments.taxonomy import family_for_naf
from segments.territory import commune as commune_info
from store.models import Business, Message, Partner, TriggerEvent
from store.sql import insert_for
from triggers import calendar as cal
from triggers import sirene_columnar
from triggers.bodacc import BodaccFormatError, BodaccStats, Skipped, read_bodacc
from triggers.effects import apply_event_effects, cancel_planned_messages, stage_for
from triggers.model import EventIn, Reject
from triggers.report import IngestReport, RejectSink
from triggers.scope import in_territory
from triggers.sirene import (
    R_CREATION,
    R_DNC,
    R_EMPLOYER,
    R_NAF,
    R_SIRET,
    R_STATE,
    R_STATE_SINCE,
    R_TRANCHE,
    SKIP_CLOSED,
    SKIP_NOT_TPE,
    TPE_TRANCHES,
    KnownState,
    Lookups,
    SireneFormatError,
    SnapshotRules,
    check_compressed,
    chunked_records,
    compare,
    facts_from_record,
    parser_process,
)
from triggers.sirene_columnar import columnar_chunks

Progress = Callable[[int], None]  # called with the number of rows just handled

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__
MESSAGES = Message.__table__
PARTNERS = Partner.__table__

# Business columns the Sirene ingest writes, in record-parameter order.
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
    "phone_consent",
    "created_at",
    "updated_at",
)
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
)
# What a stored row is compared on to decide "unchanged" (the tail of `_known`'s SELECT).
_COMPARED = (
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
)
_CMP_INDEX = tuple(SIRENE_COLUMNS.index(c) for c in _COMPARED)
_C = {name: i for i, name in enumerate(_COMPARED)}

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

_STAGING = "declic_ingest_business"  # PostgreSQL temporary staging table (per session)
_MAX_IN = 30000 if sqlite3.sqlite_version_info >= (3, 32, 0) else 900


# --- shared helpers ------------------------------------------------------------------------------


def _light_table(name: str, columns: Sequence[str]):
    # Untyped columns: the driver gets values as they are (ISO dates, bools), no per-value processing.
    return table(name, *[column(c) for c in columns])


def _now_param(conn: Connection) -> Any:
    now = dt.datetime.now(dt.UTC)
    if conn.dialect.name == "sqlite":
        # The text SQLAlchemy's DateTime writes on SQLite (UTC, no offset).
        return now.strftime("%Y-%m-%d %H:%M:%S.%f")
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


def _iso(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _event_sql(conn: Connection) -> str:
    light = _light_table("triggerevent", EVENT_COLUMNS)
    stmt = insert_for(conn, light).on_conflict_do_nothing(index_elements=["source", "external_id"])
    return str(stmt.compile(dialect=conn.dialect))


def _event_row(e: EventIn, business_id: int | None, now: Any, partner_id: int | None = None) -> tuple:
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


def _insert_new_events(conn: Connection, rows: list[tuple]) -> list[tuple]:
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
                marks = ",".join("?" * len(part))
                found = conn.exec_driver_sql(
                    f"SELECT external_id FROM triggerevent WHERE source = ? AND external_id IN ({marks})",
                    (source, *part),
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


# --- Sirene --------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    records: list[tuple]
    rejects: list[Reject]
    read: int
    skipped: dict[str, int]


def _parse_in_process(
    path: Path, lookups: Lookups | None, chunk_size: int, drop: bool, columnar: bool = False
) -> Iterator[_Chunk]:
    reader = columnar_chunks if columnar else chunked_records
    for records, rejects, read, skipped in reader(path, lookups, chunk_size, drop):
        yield _Chunk(records, list(rejects), read, skipped)


def _parse_in_child(path: Path, chunk_size: int, drop: bool, columnar: bool = False) -> Iterator[_Chunk]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue(maxsize=4)  # bounded: the parser never runs more than 4 chunks ahead
    proc = ctx.Process(target=parser_process, args=(str(path), chunk_size, out, drop, columnar), daemon=True)
    proc.start()
    try:
        while True:
            try:
                kind, data = out.get(timeout=5)
            except queue_mod.Empty:
                if not proc.is_alive():
                    raise RuntimeError(
                        f"the Sirene parser process died (exit code {proc.exitcode})"
                    ) from None
                continue
            if kind == "chunk":
                records, rejects, read, skipped = marshal.loads(data)
                yield _Chunk(records, [Reject(*r) for r in rejects], read, skipped)
            elif kind == "done":
                return
            elif kind == "error":
                raise SireneFormatError(data)
            else:
                raise RuntimeError(f"the Sirene parser failed: {data}")
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)


class SireneWriter:
    """Writes chunks of Sirene records: known-state lookup, comparison, upsert, events, resolutions."""

    def __init__(self, engine: Engine, rules: SnapshotRules, report: IngestReport) -> None:
        self.engine = engine
        self.rules = rules
        self.report = report
        self.today_iso = rules.today.isoformat()
        self.creation_cutoff = (rules.today - dt.timedelta(days=rules.creation_window_days)).isoformat()
        self.young_cutoff = (rules.today - dt.timedelta(days=int(3 * 365.25))).isoformat()
        self._family: dict[str | None, str | None] = {None: None}
        self._commune: dict[str | None, tuple] = {None: (None, None, None, None)}
        self._staging_sql: str | None = None
        self.nothing_known = False  # set during a first load into an empty store
        self._partner_territory: dict[int, tuple[str, ...]] = {}
        with engine.connect() as conn:
            self.dialect = conn.dialect.name
            self.upsert_sql = self._upsert_sql(conn)
            self.event_sql = _event_sql(conn)
            rows = conn.execute(
                select(EVENTS.c.siret, EVENTS.c.siren).where(EVENTS.c.status == "pending")
            ).all()
        self.pending_sirets = {s for s, _ in rows if s}
        self.pending_sirens = {n for s, n in rows if n and not s}

    def _upsert_sql(self, conn: Connection, from_staging: bool = False) -> str:
        light = _light_table("business", SIRENE_COLUMNS)
        stmt = insert_for(conn, light)
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
        return str(
            stmt.on_conflict_do_update(index_elements=["siret"], set_=sets).compile(dialect=conn.dialect)
        )

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

    def _territory(self, code: str | None) -> tuple:
        found = self._commune.get(code)
        if found is None:
            info = commune_info(code) if code else None
            found = (
                (info.code, info.epci, info.departement, info.region) if info else (None, None, None, None)
            )
            self._commune[code] = found
        return found

    def _family_of(self, naf: str | None) -> str | None:
        if naf in self._family:
            return self._family[naf]
        fam = self._family[naf] = family_for_naf(naf) if naf else None
        return fam

    def _known(self, conn: Connection, sirets: list[str]) -> dict[str, tuple]:
        # Driver-level query with raw values (dates as text on SQLite, date objects on PostgreSQL):
        # SQLAlchemy's expanding IN costs ~5 µs a value, more than the lookup itself.
        names = ", ".join(("siret", "id", *_COMPARED))
        out: dict[str, tuple] = {}
        cursor_rows: Iterable[Any]
        for part in _in_chunks(sirets):
            if self.dialect == "postgresql":
                cursor_rows = conn.exec_driver_sql(
                    f"SELECT {names} FROM business WHERE siret = ANY(%(s)s)", {"s": list(part)}
                )
            else:
                marks = ",".join("?" * len(part))
                cursor_rows = conn.exec_driver_sql(
                    f"SELECT {names} FROM business WHERE siret IN ({marks})", tuple(part)
                )
            for row in cursor_rows:
                out[row[0]] = tuple(row[1:])
        return out

    def _normalise_stored(self, stored: tuple) -> tuple:
        # stored = (id, *_COMPARED) as the driver returns it -> the parameter representation.
        out = list(stored[1:])
        for i, name in enumerate(_COMPARED):
            v = out[i]
            if v is None:
                continue
            if name in ("employer", "do_not_contact", "head_office"):
                out[i] = bool(v)
            elif name == "creation_date" and not isinstance(v, str):
                out[i] = v.isoformat()
        return tuple(out)

    def write(self, records: list[tuple]) -> None:
        """Write one chunk in one transaction."""
        report = self.report
        rules = self.rules
        today = rules.today
        creation_cutoff, today_iso, young_cutoff = self.creation_cutoff, self.today_iso, self.young_cutoff
        tpe = TPE_TRANCHES
        # Within a chunk the last row of a SIRET wins (update files may repeat one).
        by_siret: dict[str, tuple] = {}
        for rec in records:
            by_siret[rec[R_SIRET]] = rec
        if len(by_siret) != len(records):
            report.skipped["repeated in the file"] += len(records) - len(by_siret)
        with self.engine.begin() as conn:
            if self.dialect == "sqlite":
                # Why: on a store that is not empty the secondary indexes (commune, EPCI, région...) take
                # random inserts; a 64 MB page cache keeps their hot pages in memory, and rarer checkpoints
                # write each such page once rather than once per chunk.
                conn.exec_driver_sql("PRAGMA cache_size=-65536")
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=20000")
            now = _now_param(conn)
            known = {} if self.nothing_known else self._known(conn, list(by_siret))
            state_at = 1 + _C["state"]
            closed_on = _closure_dates(
                conn,
                [
                    known[s][0]
                    for s, rec in by_siret.items()
                    if rec[R_STATE] == "active" and s in known and known[s][state_at] == "closed"
                ],
            )
            rows: list[tuple] = []
            events: list[EventIn] = []
            closed: list[str] = []
            for siret, rec in by_siret.items():
                stored = known.get(siret)
                evs: list[EventIn] | None = None
                if stored is None:
                    if rec[R_STATE] != "active":
                        report.skipped[SKIP_CLOSED] += 1
                        continue
                    if (rec[R_TRANCHE] or "") not in tpe:
                        report.skipped[SKIP_NOT_TPE] += 1
                        continue
                    creation = rec[R_CREATION]
                    if creation and creation_cutoff <= creation <= today_iso and not rec[R_DNC]:
                        evs = compare(None, facts_from_record(rec), rules)
                    stage = _age_stage(creation, young_cutoff)
                else:
                    s = self._normalise_stored(stored)  # in _COMPARED order
                    closure = closed_on.get(stored[0])
                    if closure is not None and not (rec[R_STATE_SINCE] and rec[R_STATE_SINCE] > closure):
                        # Sirene lags behind BODACC by weeks: an "active" row whose current period began
                        # before the stored closure predates it and must not reopen the business.
                        rec = (*rec[:R_STATE], "closed", *rec[R_STATE + 1 :])
                        report.skipped[STILL_CLOSED] += 1
                    created = s[_C["creation_date"]]
                    prev = KnownState(
                        s[_C["tranche_effectifs"]],
                        s[_C["employer"]],
                        s[_C["state"]],
                        s[_C["naf_code"]],
                        dt.date.fromisoformat(created) if created else None,
                    )
                    now_state = (rec[R_TRANCHE], rec[R_EMPLOYER], rec[R_STATE], rec[R_NAF], rec[R_CREATION])
                    if (prev.tranche, prev.employer, prev.state, prev.naf, created) != now_state:
                        evs = compare(prev, facts_from_record(rec), rules)
                    stage = None  # None keeps the stored stage
                    if rec[R_STATE] == "closed":
                        stage = "closed"
                    elif prev.state == "closed":  # reopened: back to the stage its age says
                        stage = _age_stage(rec[R_CREATION], young_cutoff)
                if evs:
                    for e in evs:
                        st = stage_for(e.type, e.occurred_on, today)
                        if st is not None:
                            stage = st
                    events.extend(evs)
                row = self._params(rec, stage, now)
                if stored is not None:
                    if _unchanged(tuple(row[i] for i in _CMP_INDEX), s):
                        report.skipped["unchanged"] += 1
                        continue
                    if rec[R_STATE] == "closed" and prev.state != "closed":
                        closed.append(siret)
                rows.append(row)

            if self.dialect == "postgresql":
                self._copy_upsert(conn, rows)
            else:
                _executemany(conn, self.upsert_sql, SIRENE_COLUMNS, rows)
            report.stored += len(rows)
            if not self.nothing_known:
                _inherit_category(conn, [r[0] for r in rows if r[0] not in known and r[_CATEGORY] is None])

            need_ids = {e.siret for e in events} | set(closed)
            resolve_sirets: list[str] = []
            resolve_sirens: list[str] = []
            if self.pending_sirets or self.pending_sirens:
                new_sirets = [r[0] for r in rows if r[0] not in known]
                resolve_sirets = [s for s in new_sirets if s in self.pending_sirets]
                resolve_sirens = sorted({s[:9] for s in new_sirets} & self.pending_sirens)
                need_ids |= set(resolve_sirets)
            ids = {s: known[s][0] for s in need_ids if s in known}
            missing = [s for s in need_ids if s not in ids]
            if missing:
                ids.update(_ids_for(conn, missing))

            if events:
                _executemany(
                    conn,
                    self.event_sql,
                    EVENT_COLUMNS,
                    [_event_row(e, ids.get(e.siret), now) for e in events],
                )
                for e in events:
                    report.events[e.type] += 1
            if closed:
                cancel_planned_messages(
                    conn, [ids[s] for s in closed if s in ids], "business closed (Sirene)"
                )
            if resolve_sirets or resolve_sirens:
                self._resolve(conn, resolve_sirets, resolve_sirens, ids)

    def _params(self, rec: tuple, stage: str | None, now: Any) -> tuple:
        (
            siret,
            name,
            naf,
            naf25,
            commune,
            tranche,
            employer,
            creation,
            state,
            dnc,
            street,
            postal,
            city,
            since,
            head,
            *rest,
        ) = rec
        del since
        category = rest[0] if rest else None
        commune_code, epci, dep, region = self._territory(commune)
        return (
            siret,
            siret[:9],
            name,
            naf,
            naf25,
            self._family_of(naf),
            commune_code,
            epci,
            dep,
            region,
            tranche,
            employer,
            creation,
            state,
            dnc,
            stage,
            street,
            postal,
            city,
            "sirene" if street else None,
            head,
            category,
            False,
            now,
            now,
        )

    def _resolve(self, conn: Connection, sirets: list[str], sirens: list[str], ids: dict[str, int]) -> None:
        """Attach pending events to the businesses that just arrived, and set their stage.

        A partner's pending event is attached only when Sirene places the business inside that partner's
        territory; otherwise it is marked `rejected` (a partner never reaches a business outside its scope by
        sending its SIRET before Sirene knows it)."""
        targets: dict[int, tuple[int, str | None]] = {}  # business id -> (id, siret to set on SIREN events)
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
                .where(BUSINESS.c.siren == siren)
                .order_by(
                    (BUSINESS.c.state == "active").desc(), BUSINESS.c.head_office.desc(), BUSINESS.c.siret
                )
                .limit(1)
            ).first()
            if target is None:
                continue
            targets[target.id] = (target.id, target.siret)
            by_business.append((target.id, (EVENTS.c.siren == siren) & EVENTS.c.siret.is_(None)))
            self.pending_sirens.discard(siren)
        if not by_business:
            return
        communes = dict(conn.execute(select(BUSINESS.c.id, BUSINESS.c.commune_code)
                                     .where(BUSINESS.c.id.in_({b for b, _ in by_business}))).all())
        resolved: list[tuple[int, str, Any]] = []
        for bid, which in by_business:
            pending = conn.execute(
                select(EVENTS.c.id, EVENTS.c.partner_id, EVENTS.c.type, EVENTS.c.occurred_on)
                .where(EVENTS.c.status == "pending", which)
            ).all()
            outside = {e.id for e in pending if not self._partner_reaches(conn, e.partner_id, communes.get(bid))}
            inside = [e for e in pending if e.id not in outside]
            if outside:
                conn.execute(update(EVENTS).where(EVENTS.c.id.in_(sorted(outside))).values(status="rejected",
                                                                                   business_id=None))
                self.report.events["rejected (outside the partner's territory)"] += len(outside)
            if inside:
                values: dict[str, Any] = {"status": "accepted", "business_id": bid}
                if bid in targets:
                    values["siret"] = targets[bid][1]
                conn.execute(update(EVENTS).where(EVENTS.c.id.in_([e.id for e in inside])).values(**values))
                resolved += [(bid, e.type, e.occurred_on) for e in inside]
        if resolved:
            self.report.events["resolved from pending"] += len(resolved)
            apply_event_effects(conn, resolved, self.rules.today)

    def _partner_reaches(self, conn: Connection, partner_id: int | None, commune_code: str | None) -> bool:
        """Whether a partner's territory holds this commune (no partner, a national partner: yes)."""
        if partner_id is None:
            return True
        if partner_id not in self._partner_territory:
            self._partner_territory[partner_id] = tuple(
                conn.execute(select(PARTNERS.c.territory).where(PARTNERS.c.id == partner_id)).scalar() or ())
        territory = self._partner_territory[partner_id]
        return not territory or (commune_code is not None and in_territory(commune_code, territory))


def _age_stage(creation_iso: str | None, young_cutoff_iso: str) -> str | None:
    # The stage an establishment's age alone gives (no recent event): see triggers.lifecycle.
    if not creation_iso:
        return None
    return "creation" if creation_iso >= young_cutoff_iso else "consolidation"


_CATEGORY = SIRENE_COLUMNS.index("categorie_entreprise")


def _inherit_category(conn: Connection, sirets: Sequence[str]) -> None:
    """New establishments of a known company take its category from their siblings (same SIREN).

    Why: the category is the legal unit's (StockUniteLegale, read monthly after the establishments); a branch
    that opens between two legal-unit files belongs to the same company, so it has the same e-invoicing dates.
    """
    if not sirets:
        return
    sibling = BUSINESS.alias("sibling")
    known = (
        select(func.max(sibling.c.categorie_entreprise))
        .where(sibling.c.siren == BUSINESS.c.siren, sibling.c.categorie_entreprise.is_not(None))
        .scalar_subquery()
    )
    for part in _in_chunks(sorted(sirets), 900):
        conn.execute(
            update(BUSINESS)
            .where(BUSINESS.c.siret.in_(part), BUSINESS.c.categorie_entreprise.is_(None))
            .values(categorie_entreprise=known)
        )


_PERSONAL_CMP = frozenset(i for i, c in enumerate(_COMPARED) if c in _PERSONAL)
_STATE_CMP = _COMPARED.index("state")
_DNC_CMP = _COMPARED.index("do_not_contact")


def _unchanged(new: tuple, old: tuple) -> bool:
    """True when upserting `new` over `old` (both in _COMPARED order) would change nothing."""
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


# Counted under `skipped`: what is skipped is the reopening; the row's other facts are still merged.
STILL_CLOSED = "kept closed (Sirene row older than the closure)"


def _closure_dates(conn: Connection, business_ids: Sequence[int]) -> dict[int, str]:
    """Per business, the ISO date of its latest stored closure event (BODACC, partner or Sirene)."""
    out: dict[int, str] = {}
    for part in _in_chunks(sorted(set(business_ids)), 900):
        rows = conn.execute(
            select(EVENTS.c.business_id, func.max(EVENTS.c.occurred_on))
            .where(EVENTS.c.business_id.in_(part), EVENTS.c.type == "closure")
            .group_by(EVENTS.c.business_id)
        )
        out.update((bid, _iso(on)[:10]) for bid, on in rows if on is not None)
    return out


def _ids_for(conn: Connection, sirets: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    values = sorted(set(sirets))
    for part in _in_chunks(values):
        for siret, id_ in conn.execute(
            select(BUSINESS.c.siret, BUSINESS.c.id).where(BUSINESS.c.siret.in_(part))
        ):
            out[siret] = id_
    return out


# Indexes kept during a first load: the SIRET one enforces the upsert, the SIREN one resolves pending
# BODACC events. Both receive keys in file order (the stock is sorted by SIREN), so inserts append.
_KEPT_DURING_LOAD = {"ix_business_siret", "ix_business_siren"}


def _deferrable_indexes() -> list:
    return [ix for ix in BUSINESS.indexes if ix.name not in _KEPT_DURING_LOAD]


def ensure_business_indexes(engine: Engine) -> None:
    """Create any Business index that a killed first load left dropped."""
    with engine.begin() as conn:
        for ix in BUSINESS.indexes:
            ix.create(conn, checkfirst=True)


@contextlib.contextmanager
def _first_load(engine: Engine) -> Iterator[bool]:
    """On an empty business table, build the secondary indexes once at the end instead of row by row.

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


def ingest_sirene(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    today: dt.date,
    creation_window_days: int = 90,
    chunk_size: int = 20_000,
    parallel: bool | None = None,
    lookups: Lookups | None = None,
    rejects: RejectSink | None = None,
    progress: Progress | None = None,
    columnar: bool | None = None,
) -> IngestReport:
    """Read a StockEtablissement file (stock or daily update) into the store; returns the report.

    A StockUniteLegale file (told by its header) goes to `ingest_sirene_ul`: the company categories.

    `parallel` runs the parser in a second process (default: when the machine has two cores or more
    and the file is larger than 20 MB; never with injected `lookups`, which stay in this process).
    `columnar` reads with pyarrow (`triggers.sirene_columnar`, the `national` extra; default: when
    pyarrow is installed), otherwise with the row-by-row reader; both give the same chunks.
    """
    path = Path(path)
    # A damaged archive is refused before anything is applied (chunks commit one by one below).
    check_compressed(path)
    from triggers.sirene_ul import header_of, is_unite_legale_header

    if is_unite_legale_header(header_of(path)):
        # The legal-unit stock under the same command: it carries the company category, not establishments.
        return ingest_sirene_ul(engine, path, rejects=rejects, progress=progress, check=False)
    report = IngestReport()
    rules = SnapshotRules(today=today, creation_window_days=creation_window_days)
    writer = SireneWriter(engine, rules, report)
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1 and path.stat().st_size > 20_000_000
    if columnar is None:
        columnar = sirene_columnar.available()
    with _first_load(engine) as first:
        # Why: on an empty store nothing is known, so the per-chunk known-state read is skipped and the
        # parser itself drops what would only be dropped here. A stock file never repeats a SIRET; a
        # repeat in an update file is still merged by the upsert.
        writer.nothing_known = first
        chunks = (
            _parse_in_child(path, chunk_size, first, columnar)
            if parallel and lookups is None
            else _parse_in_process(path, lookups, chunk_size, first, columnar)
        )
        for chunk in chunks:
            for reject in chunk.rejects:
                report.reject(reject, rejects)
            report.read += chunk.read
            report.accepted += chunk.read - len(chunk.rejects)
            report.skipped.update(chunk.skipped)
            if chunk.records:
                writer.write(chunk.records)
            if progress:
                progress(chunk.read)
    refresh_lifecycle(engine, today)
    report.check()
    return report


def refresh_lifecycle(engine: Engine, today: dt.date) -> int:
    """Age the stages that time changes: young businesses grow into consolidation, event windows end."""
    young = today - dt.timedelta(days=int(3 * 365.25))
    b = BUSINESS
    changed = 0
    with engine.begin() as conn:
        changed += (
            conn.execute(
                update(b)
                .where(b.c.lifecycle_stage == "creation", b.c.creation_date < young)
                .values(lifecycle_stage="consolidation")
            ).rowcount
            or 0
        )
        for stage, days, kinds in (
            ("transfer", 365, ("takeover",)),
            ("critical_period", 365, ("critical_period",)),
            ("collective_procedure", 365, ("collective_procedure",)),
            ("first_hires", 730, ("first_hire",)),
        ):
            since = today - dt.timedelta(days=days)
            recent = (
                select(EVENTS.c.id)
                .where(
                    EVENTS.c.business_id == b.c.id, EVENTS.c.type.in_(kinds), EVENTS.c.occurred_on >= since
                )
                .exists()
            )
            changed += (
                conn.execute(
                    update(b)
                    .where(b.c.lifecycle_stage == stage, ~recent)
                    .values(
                        lifecycle_stage=case(
                            (b.c.creation_date >= young, "creation"),
                            (b.c.creation_date.is_not(None), "consolidation"),
                            else_=None,
                        )
                    )
                ).rowcount
                or 0
            )
    return changed


# --- Sirene legal units (StockUniteLegale) ------------------------------------------------------


def ingest_sirene_ul(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    chunk_size: int = 50_000,
    rejects: RejectSink | None = None,
    progress: Progress | None = None,
    check: bool = True,
) -> IngestReport:
    """Read a StockUniteLegale file: the company category (PME, ETI, GE) of every known establishment's SIREN.

    One chunk is one transaction; per chunk the store is read once for the chunk's SIRENs and only the
    establishments whose category changes are written, so a second run of the same file writes nothing.
    A SIREN the store does not know is counted under `skipped` (most of the national stock: closed units,
    companies with no TPE establishment); its establishments get the category from the next legal-unit file,
    or from a sibling establishment (see `_inherit_category`). An empty category never erases a known one.
    """
    from triggers.sirene_ul import chunked_unites

    path = Path(path)
    if check:  # a damaged archive applies nothing (chunks commit one by one); `ingest_sirene` checked it already
        check_compressed(path)
    report = IngestReport()
    for records, chunk_rejects, read in chunked_unites(path, chunk_size):
        for reject in chunk_rejects:
            report.reject(reject, rejects)
        report.read += read
        report.accepted += read - len(chunk_rejects)
        if records:
            _write_categories(engine, records, report)
        if progress:
            progress(read)
    report.check()
    return report


def _write_categories(engine: Engine, records: Sequence[tuple], report: IngestReport) -> None:
    by_siren: dict[str, str] = {}
    for siren, category, _year in records:
        if category is None:
            report.skipped["no category (INSEE)"] += 1
        else:
            by_siren[siren] = category  # a repeated SIREN: the last row wins
    if not by_siren:
        return
    with engine.begin() as conn:
        stored: dict[str, set[str | None]] = {}
        for part in _in_chunks(sorted(by_siren)):
            for siren, category in conn.execute(
                select(BUSINESS.c.siren, BUSINESS.c.categorie_entreprise).where(BUSINESS.c.siren.in_(part))
            ):
                stored.setdefault(siren, set()).add(category)
        changes: list[tuple[str, str]] = []
        for siren, category in by_siren.items():
            known = stored.get(siren)
            if known is None:
                report.skipped["SIREN not in the store"] += 1
            elif known == {category}:
                report.skipped["unchanged"] += 1
            else:
                changes.append((category, siren))
        if not changes:
            return
        b = BUSINESS
        stmt = (
            update(b)
            .where(
                b.c.siren == bindparam("b_siren"),
                or_(b.c.categorie_entreprise.is_(None), b.c.categorie_entreprise != bindparam("b_category")),
            )
            .values(categorie_entreprise=bindparam("b_category"), updated_at=dt.datetime.now(dt.UTC))
        )
        conn.execute(stmt, [{"b_category": c, "b_siren": s} for c, s in changes])
        report.stored += len(changes)


# --- BODACC --------------------------------------------------------------------------------------


def _businesses_for_sirens(conn: Connection, sirens: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Per SIREN the establishment a SIREN-only event lands on: active first, head office first."""
    out: dict[str, tuple[int, str, tuple]] = {}
    for part in _in_chunks(sorted(set(sirens))):
        rows = conn.execute(
            select(
                BUSINESS.c.siren, BUSINESS.c.id, BUSINESS.c.siret, BUSINESS.c.state, BUSINESS.c.head_office
            ).where(BUSINESS.c.siren.in_(part))
        )
        for siren, id_, siret, state, head in rows:
            rank = (state != "active", not head, siret)
            if siren not in out or rank < out[siren][2]:
                out[siren] = (id_, siret, rank)
    return {k: (v[0], v[1]) for k, v in out.items()}


def store_siren_events(
    engine: Engine, events: Sequence[EventIn], today: dt.date, report: IngestReport
) -> None:
    """Store SIREN-keyed events in one transaction: attached when the business is known, else pending."""
    if not events:
        return
    with engine.begin() as conn:
        now = _now_param(conn)
        targets = _businesses_for_sirens(conn, [e.siren for e in events if e.siren])
        rows = []
        for e in events:
            target = targets.get(e.siren or "")
            if target is not None and e.siret is None:
                e.siret = target[1]
            rows.append(_event_row(e, target[0] if target else None, now))
        new = _insert_new_events(conn, rows)
        effects = []
        for row in new:
            kind, business_id, status = row[3], row[6], row[9]
            report.events[kind] += 1
            if status == "pending":
                report.events["pending (business not known yet)"] += 1
            elif business_id is not None:
                effects.append((business_id, kind, row[7]))
        report.skipped["already stored"] += len(rows) - len(new)
        report.stored += len(new)
        if effects:
            apply_event_effects(conn, effects, today)


def ingest_bodacc(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    today: dt.date,
    chunk_size: int = 2_000,
    rejects: RejectSink | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Read a BODACC file into the store; returns the report."""
    check_compressed(path, BodaccFormatError)  # a damaged .gz applies nothing (chunks commit one by one)
    report = IngestReport()
    stats = BodaccStats()

    def on_skip(skip: Skipped) -> None:
        report.skipped[skip.reason] += 1

    batch: list[EventIn] = []
    seen = 0
    for event in read_bodacc(
        path, on_reject=lambda r: report.reject(r, rejects), on_skip=on_skip, stats=stats
    ):
        batch.append(event)
        if len(batch) >= chunk_size:
            store_siren_events(engine, batch, today, report)
            batch = []
            if progress:
                progress(stats.read - seen)
                seen = stats.read
    store_siren_events(engine, batch, today, report)
    if progress:
        progress(stats.read - seen)
    report.read = stats.read
    report.accepted = stats.read - stats.rejected
    report.check()
    return report


# --- partner files -------------------------------------------------------------------------------


def import_partner_file(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    partner: str,
    today: dt.date,
    chunk_size: int = 500,
    rejects: RejectSink | None = None,
    progress: Progress | None = None,
    secret: str | None = None,
) -> IngestReport:
    """Import a partner CSV through the same intake as the API (`store.events.store_events`).

    With the secret key, an event about an erased identity is stored without its contacts nor payload, as the
    API does (counted as withheld)."""
    from orchestrator.app.intake import PartnerScope, store_with_effects
    from store.models import Partner
    from triggers.partner_csv import PartnerStats, read_partner_chunks

    partners = Partner.__table__
    with engine.connect() as conn:
        row = conn.execute(
            select(partners.c.id, partners.c.name, partners.c.allowed_types, partners.c.territory).where(
                partners.c.name == partner
            )
        ).first()
    if row is None:
        raise LookupError(f"unknown partner {partner!r} (create it with `declic partners add {partner}`)")
    report = IngestReport()
    stats = PartnerStats()
    # The same scope as the API token, read once for the file: allowed types, and the territory where the
    # business is (the store is read once per chunk for rows that do not say where).
    scope = PartnerScope(tuple(row.allowed_types or ()), tuple(row.territory or ()))
    seen = 0
    for batch in read_partner_chunks(
        path,
        source=f"partner:{row.id}",
        contact_source=row.name,
        check=lambda events: scope.rejects(engine, events),
        today=today,
        chunk_size=chunk_size,
        on_reject=lambda r: report.reject(r, rejects),
        stats=stats,
    ):
        # Stored before the next chunk is read and checked, so that chunk's scope sees this one's places.
        stored_all = (store_with_effects(engine, batch, partner_id=row.id, today=today, secret=secret)
                      if batch else [])
        for stored, event in zip(stored_all, batch, strict=True):
            if stored.status == "duplicate":
                report.skipped["already stored"] += 1
            else:
                report.events[event.type] += 1
                report.stored += 1
                if stored.withheld:
                    report.events["stored without contacts (erased person)"] += 1
                if stored.status == "pending":
                    report.events["pending (business not known yet)"] += 1
        if progress:
            progress(stats.read - seen)
            seen = stats.read
    report.read = stats.read
    report.accepted = stats.read - stats.rejected
    if stats.dropped.fields:  # undeclared payload fields (triggers.payload_schema)
        report.events["champs non déclarés retirés"] += stats.dropped.fields
    report.check()
    return report


# --- regulatory calendar -------------------------------------------------------------------------


@dataclass
class DeadlineRun:
    """What `emit_deadlines` did: the due reminders and the report."""

    due: list[tuple[cal.Deadline, int]] = field(default_factory=list)
    report: IngestReport = field(default_factory=IngestReport)


def emit_deadlines(
    engine: Engine,
    *,
    today: dt.date,
    offsets: Sequence[int] = cal.DEFAULT_OFFSETS,
    deadlines: Sequence[cal.Deadline] | None = None,
    chunk_size: int = 20_000,
) -> DeadlineRun:
    """Store the deadline reminders due today for every concerned active business that may be contacted,
    once each. Who is concerned follows the company's category (`business.categorie_entreprise`, from
    StockUniteLegale or the Sirene API): see triggers/calendar.py `size_class`."""
    run = DeadlineRun(
        due=cal.due_offsets(deadlines if deadlines is not None else cal.load_deadlines(), offsets, today)
    )
    report = run.report
    if not run.due:
        return run
    last_id = 0
    b = BUSINESS
    while True:
        # Keyset pagination: bounded memory whatever the number of businesses.
        with engine.connect() as conn:
            page = conn.execute(
                select(b.c.id, b.c.siret, b.c.tranche_effectifs, b.c.state, b.c.categorie_entreprise)
                .where(b.c.id > last_id, b.c.state == "active", b.c.do_not_contact.is_(False))
                .order_by(b.c.id)
                .limit(chunk_size)
            ).all()
        if not page:
            break
        last_id = page[-1].id
        ids = {r.siret: r.id for r in page}
        # The company's category (legal unit) decides the dates, not the establishment's head count.
        events = list(
            cal.deadline_events(
                run.due, [(r.siret, r.tranche_effectifs, r.state, r.categorie_entreprise) for r in page]
            )
        )
        report.read += len(page)
        report.accepted += len(page)
        with engine.begin() as conn:
            now = _now_param(conn)
            inserted = _insert_new_events(conn, [_event_row(e, ids[e.siret], now) for e in events])
        report.events["deadline"] += len(inserted)
        report.stored += len(inserted)
        report.skipped["already reminded"] += len(events) - len(inserted)
    report.check()
    return run
