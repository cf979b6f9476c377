"""Every door in, from file to store: Sirene, BODACC, partner files and the regulatory calendar.

Each ingest reads its file through the pure parser of its feed (triggers/), decides what the rows mean, and
writes through store/ingest.py in chunks; one chunk is one transaction (businesses, events, pending
resolutions, cancelled messages together), so an ingest killed at any moment and run again ends in the same
state as one uninterrupted run: committed chunks are upserts and idempotent inserts (events are unique on
source + external_id), and the chunk in flight was rolled back.

Sirene at national scale: the parser runs in a second process (it is the heavier half) and hands
over chunks of compact records (marshal); this process reads the known state of the chunk's SIRETs
in bulk, runs the snapshot comparison, and writes with driver-level executemany (COPY on PostgreSQL).
Known rows that did not change are not written.

Events whose business is not known yet (a BODACC SIREN, a partner SIRET) are stored as `pending`;
the Sirene ingest resolves them when the business arrives.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import marshal
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from orchestrator.app.collector import collector_paused
from orchestrator.app.intake import PartnerScope, apply_event_effects, store_with_effects
from store.effects import cancel_planned_messages
from store.effects import refresh_lifecycle as age_stages
from store.ingest import (
    COMPARED_AT,
    COMPARED_INDEX,
    SireneStore,
    businesses_for_sirens,
    closure_dates,
    contactable_page,
    event_row,
    first_load,
    ids_for,
    inherit_category,
    insert_new_events,
    now_param,
    set_legal_units,
    unchanged,
)
from store.partners import partner_named
from triggers import calendar as cal
from triggers import sirene_columnar
from triggers.bodacc import BodaccFormatError, BodaccStats, Skipped, read_bodacc
from triggers.lifecycle import stage_for, stage_windows
from triggers.model import EventIn, Reject
from triggers.partner_csv import PartnerStats, read_partner_chunks
from triggers.payload_schema import DROPPED_FIELDS
from triggers.report import IngestReport, RejectSink
from triggers.scope import in_territory
from triggers.sirene import (
    BUSINESS_ROW,
    R_CREATION,
    R_DNC,
    R_EMPLOYER,
    R_NAF,
    R_SIRET,
    R_STATE,
    R_STATE_SINCE,
    R_TRANCHE,
    ROW_STAGE,
    SKIP_CLOSED,
    SKIP_NOT_TPE,
    SKIP_REPEATED,
    TPE_TRANCHES,
    FirstLoadRows,
    KnownState,
    Lookups,
    SnapshotRules,
    built_chunks,
    check_compressed,
    chunked_records,
    compare,
    facts_from_record,
    row_values,
)
from triggers.sirene_columnar import business_values, columnar_chunks, columnar_unites, first_load_batches, row_major
from triggers.sirene_parser import parse_in_child
from triggers.sirene_ul import chunked_unites, header_of, is_unite_legale_header

Progress = Callable[[int], None]  # called with the number of rows just handled

# --- Sirene --------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    records: list[tuple]  # a first load's chunks carry business rows instead (`values`)
    rejects: list[Reject]
    read: int
    skipped: dict[str, int]
    values: list | None = None  # the business rows' values, row after row (`triggers.sirene.row_values`)
    recent: list[tuple[int, tuple]] = field(default_factory=list)


def _parse_in_process(
    path: Path, lookups: Lookups | None, chunk_size: int, drop: bool, columnar: bool = False,
    build: FirstLoadRows | None = None, empty_for_null: bool = False,
) -> Iterator[_Chunk]:
    if build is not None and columnar:
        for batch, recent, rejects, read, skipped in first_load_batches(path, lookups, chunk_size, build):
            yield _Chunk([], list(rejects), read, skipped, business_values(row_major(batch), empty_for_null), recent)
        return
    reader = columnar_chunks if columnar else chunked_records
    chunks = reader(path, lookups, chunk_size, drop)
    if build is not None:
        for columns, recent, rejects, read, skipped in built_chunks(chunks, build.build):
            yield _Chunk([], list(rejects), read, skipped, row_values(columns), recent)
        return
    for records, rejects, read, skipped in chunks:
        yield _Chunk(records, list(rejects), read, skipped)


def _parse_in_child(path: Path, chunk_size: int, drop: bool, columnar: bool = False,
                    build: FirstLoadRows | None = None, empty_for_null: bool = False) -> Iterator[_Chunk]:
    cutoffs = (build.today, build.creation_cutoff, build.young_cutoff) if build is not None else None
    with contextlib.closing(parse_in_child(path, chunk_size, drop, columnar, cutoffs)) as frames:
        for kind, data in frames:
            if kind == "chunk":
                records, rejects, read, skipped = marshal.loads(data)
                yield _Chunk(records, [Reject(*r) for r in rejects], read, skipped)
            elif kind == "rows":
                columns, recent, rejects, read, skipped = marshal.loads(data)
                yield _Chunk([], [Reject(*r) for r in rejects], read, skipped, row_values(columns), recent)
            else:  # "arrow"
                batch, recent, rejects, read, skipped = marshal.loads(data)
                yield _Chunk([], [Reject(*r) for r in rejects], read, skipped,
                             business_values(batch, empty_for_null), recent)


class SireneWriter:
    """Writes chunks of Sirene records: known-state lookup, comparison, upsert, events, resolutions."""

    def __init__(self, engine: Engine, rules: SnapshotRules, report: IngestReport, now: dt.datetime) -> None:
        self.engine = engine
        self.now = now  # the run's moment (aware UTC): every row it writes is stamped with it
        self.rules = rules
        self.report = report
        self.store = SireneStore(engine)
        self.today_iso = rules.today.isoformat()
        self.creation_cutoff = (rules.today - dt.timedelta(days=rules.creation_window_days)).isoformat()
        self.young_cutoff = (rules.today - dt.timedelta(days=int(3 * 365.25))).isoformat()
        # The first load's row builder; its territory and family caches serve the row-by-row path too.
        self.build = FirstLoadRows(self.today_iso, self.creation_cutoff, self.young_cutoff)
        self._territory = self.build.territory
        self._family_of = self.build.family

    def write(self, records: list[tuple]) -> None:
        """Write one chunk of records in one transaction, against what the store knows of them."""
        report = self.report
        store = self.store
        # Within a chunk the last row of a SIRET wins (update files may repeat one).
        by_siret: dict[str, tuple] = dict(zip([rec[R_SIRET] for rec in records], records, strict=True))
        if len(by_siret) != len(records):
            report.skipped[SKIP_REPEATED] += len(records) - len(by_siret)
        with self.engine.begin() as conn:
            store.begin_chunk(conn)
            now = now_param(conn, self.now)
            # Per known SIRET: (business id, stored columns in COMPARED order).
            known = store.known(conn, list(by_siret))
            rows, events, closed = self._compared_rows(conn, by_siret, known, now)
            store.upsert(conn, rows)
            report.stored += len(rows)
            # New rows of a stock file carry no category or legal form (the legal-unit file's): their siblings may.
            inherit_category(conn, [r[0] for r in rows if r[0] not in known])
            self._after(conn, [r[0] for r in rows if r[0] not in known], events, closed, known, now)

    def write_new(self, values: list, recent: list[tuple[int, tuple]]) -> None:
        """Write one chunk of a first load in one transaction: rows built by `triggers.sirene.FirstLoadRows`
        (nothing known, nothing compared), given as their values row after row, and the events of its recent
        creations."""
        rules, today = self.rules, self.rules.today
        width = len(BUSINESS_ROW)
        events: list[EventIn] = []
        for i, rec in recent:
            evs = compare(None, facts_from_record(rec), rules)
            at = i * width + ROW_STAGE
            for e in evs:
                values[at] = stage_for(e.type, e.occurred_on, today) or values[at]
            events.extend(evs)
        sirets = values[::width]
        with self.engine.begin() as conn:
            self.store.begin_chunk(conn)
            now = now_param(conn, self.now)
            self.store.insert_new(conn, values, now)
            self.report.stored += len(sirets)
            self._after(conn, sirets, events, [], {}, now)

    def _after(self, conn: Any, new_sirets: list[str], events: list[EventIn], closed: list[str],
               known: dict[str, tuple[int, tuple]], now: Any) -> None:
        """A chunk's events, cancellations and pending resolutions, in its transaction."""
        report = self.report
        store = self.store
        need_ids = {e.siret for e in events} | set(closed)
        resolve_sirets: list[str] = []
        resolve_sirens: list[str] = []
        if store.pending_sirets or store.pending_sirens:
            resolve_sirets = [s for s in new_sirets if s in store.pending_sirets]
            resolve_sirens = sorted({s[:9] for s in new_sirets} & store.pending_sirens)
            need_ids |= set(resolve_sirets)
        ids = {s: known[s][0] for s in need_ids if s in known}
        missing = [s for s in need_ids if s not in ids]
        if missing:
            ids.update(ids_for(conn, missing))

        if events:
            store.insert_events(conn, [event_row(e, ids.get(e.siret), now) for e in events])
            for e in events:
                report.events[e.type] += 1
        if closed:
            cancel_planned_messages(conn, [ids[s] for s in closed if s in ids], "business closed (Sirene)")
        if resolve_sirets or resolve_sirens:
            self._resolve(conn, resolve_sirets, resolve_sirens, ids)

    def _compared_rows(
        self, conn: Any, by_siret: dict[str, tuple], known: dict[str, tuple[int, tuple]], now: Any
    ) -> tuple[list[tuple], list[EventIn], list[str]]:
        """The rows to upsert, the events they mean and the SIRETs they close, row by row against what the store
        knew (`known`)."""
        report = self.report
        rules = self.rules
        today = rules.today
        creation_cutoff, today_iso, young_cutoff = self.creation_cutoff, self.today_iso, self.young_cutoff
        tpe = TPE_TRANCHES
        cmp_index = COMPARED_INDEX
        closed_on = closure_dates(
            conn,
            [
                known[s][0]
                for s, rec in by_siret.items()
                if rec[R_STATE] == "active" and s in known and known[s][1][COMPARED_AT["state"]] == "closed"
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
                bid, s = stored
                closure = closed_on.get(bid)
                if closure is not None and not (rec[R_STATE_SINCE] and rec[R_STATE_SINCE] > closure):
                    # Sirene lags behind BODACC by weeks: an "active" row whose current period began
                    # before the stored closure predates it and must not reopen the business.
                    rec = (*rec[:R_STATE], "closed", *rec[R_STATE + 1 :])
                    report.skipped[STILL_CLOSED] += 1
                created = s[COMPARED_AT["creation_date"]]
                prev = KnownState(
                    s[COMPARED_AT["tranche_effectifs"]],
                    s[COMPARED_AT["employer"]],
                    s[COMPARED_AT["state"]],
                    s[COMPARED_AT["naf_code"]],
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
                if unchanged(tuple(row[i] for i in cmp_index), s):
                    report.skipped["unchanged"] += 1
                    continue
                if rec[R_STATE] == "closed" and prev.state != "closed":
                    closed.append(siret)
            rows.append(row)

        return rows, events, closed

    def _params(self, rec: tuple, stage: str | None, now: Any) -> tuple:
        # A record (triggers.sirene R_* layout) as a business row (store.ingest.SIRENE_COLUMNS order).
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
        category, form = rest if rest else (None, None)
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
            form,
            False,
            now,
            now,
        )

    def _resolve(self, conn: Any, sirets: list[str], sirens: list[str], ids: dict[str, int]) -> None:
        """Attach pending events to the businesses that just arrived, and set their stage.

        A partner's pending event is attached only when Sirene places the business inside that partner's
        territory; otherwise it is marked `rejected` (a partner never reaches a business outside its scope by
        sending its SIRET before Sirene knows it)."""
        resolved, rejected = self.store.resolve_pending(conn, sirets, sirens, ids, _reaches)
        if rejected:
            self.report.events["rejected (outside the partner's territory)"] += rejected
        if resolved:
            self.report.events[RESOLVED] += len(resolved)
            apply_event_effects(conn, resolved, self.rules.today)


def _reaches(territory: tuple[str, ...], commune_code: str | None) -> bool:
    """Whether a partner's territory holds this commune (a national partner: yes)."""
    return not territory or (commune_code is not None and in_territory(commune_code, territory))


def _age_stage(creation_iso: str | None, young_cutoff_iso: str) -> str | None:
    # The stage an establishment's age alone gives (no recent event): see triggers.lifecycle.
    if not creation_iso:
        return None
    return "creation" if creation_iso >= young_cutoff_iso else "consolidation"


RESOLVED = "resolved from pending"  # counted under `events`

# Counted under `skipped`: what is skipped is the reopening; the row's other facts are still merged.
STILL_CLOSED = "kept closed (Sirene row older than the closure)"


def ingest_sirene(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    today: dt.date,
    now: dt.datetime,
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
    if is_unite_legale_header(header_of(path)):
        # The legal-unit stock under the same command: it carries the company category, not establishments.
        return ingest_sirene_ul(engine, path, now=now, rejects=rejects, progress=progress, check=False,
                                columnar=columnar)
    report = IngestReport()
    rules = SnapshotRules(today=today, creation_window_days=creation_window_days)
    writer = SireneWriter(engine, rules, report, now)
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1 and path.stat().st_size > 20_000_000
    if columnar is None:
        columnar = sirene_columnar.available()
    with first_load(engine) as first, collector_paused():
        # Why: on an empty store nothing is known, so the per-chunk known-state read is skipped, the
        # parser itself drops what would only be dropped here and builds the business rows beside the
        # writer. A stock file never repeats a SIRET; a repeat in an update file is still merged by the upsert.
        # On PostgreSQL the writer mostly streams COPY and the server takes a core of its own: with the row reader
        # the parser process is the busier one already, so the rows are built here (the same builder, on the
        # records); Arrow builds them for a fraction of that in the parser.
        in_parser = first and (engine.dialect.name == "sqlite" or columnar)
        build = writer.build if in_parser else None
        chunks = (
            _parse_in_child(path, chunk_size, first, columnar, build, writer.store.empty_is_null)
            if parallel and lookups is None
            else _parse_in_process(path, lookups, chunk_size, first, columnar, build, writer.store.empty_is_null)
        )
        # Closed as soon as the loop ends, by an exception too: a parser process is stopped there, not when the
        # traceback that holds the generator is freed.
        with contextlib.closing(chunks):
            for chunk in chunks:
                for reject in chunk.rejects:
                    report.reject(reject, rejects)
                report.read += chunk.read
                report.accepted += chunk.read - len(chunk.rejects)
                report.skipped.update(chunk.skipped)
                if first and not in_parser and chunk.records:
                    columns, chunk.recent, left_out = writer.build.build(chunk.records)
                    chunk.values = row_values(columns)
                    report.skipped.update(left_out)
                if chunk.values:
                    writer.write_new(chunk.values, chunk.recent)
                elif chunk.records and not first:
                    writer.write(chunk.records)
                if progress:
                    progress(chunk.read)
    if not first or report.events.get(RESOLVED):
        # Why not after a first load alone: its rows got their stages from `today` already (age, recent creation),
        # and ageing them would read the whole table for nothing (a second on 2 million rows).
        refresh_lifecycle(engine, today)
    report.check()
    return report


def refresh_lifecycle(engine: Engine, today: dt.date) -> int:
    """Age the stages that time changes: young businesses grow into consolidation, event windows end."""
    young_since, windows = stage_windows(today)
    with engine.begin() as conn:
        return age_stages(conn, young_since, windows)


# --- Sirene legal units (StockUniteLegale) ------------------------------------------------------


def ingest_sirene_ul(
    engine: Engine,
    path: str | os.PathLike[str],
    *,
    now: dt.datetime,
    chunk_size: int = 50_000,
    rejects: RejectSink | None = None,
    progress: Progress | None = None,
    check: bool = True,
    columnar: bool | None = None,
) -> IngestReport:
    """Read a StockUniteLegale file: the company category (PME, ETI, GE) and legal form (INSEE's catégorie
    juridique) of every known establishment's SIREN.

    One chunk is one transaction; per chunk the store is read once for the chunk's SIRENs and only the
    establishments whose category or legal form changes are written, so a second run of the same file writes
    nothing.
    A SIREN the store does not know is counted under `skipped` (most of the national stock: closed units,
    companies with no TPE establishment); its establishments get the category from the next legal-unit file,
    or from a sibling establishment (see `store.ingest.inherit_category`). An empty category or legal form never
    erases a known one; a row with neither is counted under `skipped`.

    `columnar` reads with pyarrow (`triggers.sirene_columnar.columnar_unites`; default: when pyarrow is installed),
    otherwise row by row; both give the same chunks and rejects.
    """
    path = Path(path)
    if check:  # a damaged archive applies nothing (chunks commit one by one); `ingest_sirene` checked it already
        check_compressed(path)
    if columnar is None:
        columnar = sirene_columnar.available()
    report = IngestReport()
    reader = columnar_unites if columnar else chunked_unites
    with collector_paused():
        for records, chunk_rejects, read in reader(path, chunk_size):
            for reject in chunk_rejects:
                report.reject(reject, rejects)
            report.read += read
            report.accepted += read - len(chunk_rejects)
            if records:
                _write_categories(engine, records, report, now)
            if progress:
                progress(read)
    report.check()
    return report


def _write_categories(engine: Engine, records: Sequence[tuple], report: IngestReport, now: dt.datetime) -> None:
    by_siren: dict[str, tuple[str | None, str | None]] = {}
    for siren, category, _year, form in records:
        if category is None and form is None:
            report.skipped["no category (INSEE)"] += 1
        else:
            by_siren[siren] = (category, form)  # a repeated SIREN: the last row wins
    done = set_legal_units(engine, by_siren, now=now)
    if done.unknown:
        report.skipped["SIREN not in the store"] += done.unknown
    if done.unchanged:
        report.skipped["unchanged"] += done.unchanged
    report.stored += done.changed


# --- BODACC --------------------------------------------------------------------------------------


def store_siren_events(
    engine: Engine, events: Sequence[EventIn], today: dt.date, report: IngestReport, now: dt.datetime
) -> None:
    """Store SIREN-keyed events in one transaction: attached when the business is known, else pending."""
    if not events:
        return
    with engine.begin() as conn:
        stamp = now_param(conn, now)
        targets = businesses_for_sirens(conn, [e.siren for e in events if e.siren])
        rows = []
        for e in events:
            target = targets.get(e.siren or "")
            if target is not None and e.siret is None:
                e.siret = target[1]
            rows.append(event_row(e, target[0] if target else None, stamp))
        new = insert_new_events(conn, rows)
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
    now: dt.datetime,
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
            store_siren_events(engine, batch, today, report, now)
            batch = []
            if progress:
                progress(stats.read - seen)
                seen = stats.read
    store_siren_events(engine, batch, today, report, now)
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
    now: dt.datetime,
    chunk_size: int = 500,
    rejects: RejectSink | None = None,
    progress: Progress | None = None,
    secret: str | None = None,
) -> IngestReport:
    """Import a partner CSV through the same intake as the API (`store.events.store_events`).

    With the secret key, an event about an erased identity is stored without its contacts nor payload, as the
    API does (counted as withheld)."""
    row = partner_named(engine, partner)
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
        stored_all = (store_with_effects(engine, batch, partner_id=row.id, today=today, now=now,
                                         secret=secret)
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
        report.events[DROPPED_FIELDS] += stats.dropped.fields
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
    now: dt.datetime,
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
    while True:
        # Keyset pagination: bounded memory whatever the number of businesses.
        page = contactable_page(engine, last_id, chunk_size)
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
            stamp = now_param(conn, now)
            inserted = insert_new_events(conn, [event_row(e, ids[e.siret], stamp) for e in events])
        report.events["deadline"] += len(inserted)
        report.stored += len(inserted)
        report.skipped["already reminded"] += len(events) - len(inserted)
    report.check()
    return run
