"""Event intake: store normalised events once per (source, external_id), committed before any answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from store.businesses import StoredDetails, partner_proposals, stored_details, upsert_businesses
from store.driver import driver_sql, insert_values
from store.models import Business, Partner, TriggerEvent
from store.privacy import any_erased, fingerprint, hashed_among
from store.proposals import record_proposals
from store.sql import chunks, insert_for_dialect
from store.suppressions import inherit_suppressions, normalize_address
from triggers.model import CONVERSION_TYPES, EventIn

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__
PARTNERS = Partner.__table__


@dataclass(slots=True)
class Stored:
    """The fate of one event: accepted (new), duplicate (already stored), pending (business unknown).

    Not frozen: a frozen dataclass sets each field through object.__setattr__, and a batch builds 500 of these
    (0.7 against 0.16 µs each); nobody changes one after `store_events_in` returns it."""

    external_id: str
    status: str
    event_id: int | None = None
    # Its SIRET, e-mail or phone was erased (keyed hash in the suppression list): stored without contacts.
    withheld: bool = False
    business_id: int | None = None  # the business an accepted event is attached to


@dataclass(frozen=True, slots=True)
class StoredPlace:
    """Where the store places a business, and who may still place it."""

    commune_code: str | None
    head_office: bool | None  # set by Sirene: a business Sirene placed
    created_by: str | None  # the partner whose event created it ("partner:<id>")


def stored_places(engine: Engine, sirets: Sequence[str]) -> dict[str, StoredPlace]:
    """Where the store places each of these SIRETs it knows (one read per 900 SIRETs)."""
    known: dict[str, StoredPlace] = {}
    if not sirets:
        return known
    b = BUSINESS
    with engine.connect() as conn:
        for part in chunks(sorted(set(sirets)), 900):
            known.update((r.siret, StoredPlace(r.commune_code, r.head_office, r.created_by))
                         for r in conn.execute(select(b.c.siret, b.c.commune_code, b.c.head_office, b.c.created_by)
                                               .where(b.c.siret.in_(part))))
    return known


def erased_among(conn: Connection, secret: str, events: Sequence[EventIn]) -> set[int]:
    """The positions of the events about an erased identity: their SIRET, an e-mail or a phone is kept in the
    suppression list as a keyed hash (`store.privacy.fingerprint`)."""
    if not any_erased(conn):
        return set()
    wanted: dict[str, set[int]] = {}
    for i, e in enumerate(events):
        values = [("siret", e.siret)] + [(c.kind, c.value) for c in (e.business.contacts if e.business else [])
                                         if c.kind in ("email", "phone")]
        for kind, value in values:
            if value:
                wanted.setdefault(fingerprint(secret, kind, value), set()).add(i)
    return {i for digest in hashed_among(conn, wanted) for i in wanted[digest]}


@lru_cache(maxsize=4)
def _insert_events(dialect: str):
    # Built once per dialect (statement construction dominates a one-event request).
    stmt = insert_for_dialect(dialect, EVENTS).on_conflict_do_nothing(index_elements=["source", "external_id"])
    return stmt.returning(EVENTS.c.id, EVENTS.c.source, EVENTS.c.external_id)


def store_events(engine: Engine, events: Sequence[EventIn], partner_id: int | None = None, *,
                 now: dt.datetime) -> list[Stored]:
    """Upsert the businesses the events describe, then insert the events idempotently, in one transaction,
    stamped `now` (aware UTC, the caller's clock)."""
    if not events:
        return []
    with engine.begin() as conn:
        return store_events_in(conn, events, partner_id, now=now)


class DuplicateRace(Exception):
    """A concurrent writer stored one of the events whose business `store_events_in(create_first=True)` had
    already created: the caller rolls the transaction back and stores the batch again without it."""


def store_events_in(conn: Connection, events: Sequence[EventIn], partner_id: int | None = None, *,
                    now: dt.datetime, create_first: bool = False) -> list[Stored]:
    """`store_events` inside the caller's transaction (so what follows from the events commits with them).

    The event rows go in first: only the events actually stored (not duplicates, whether from this batch,
    an earlier one or a concurrent call, which the unique constraint decides) apply the business details
    they carry. A duplicate changes nothing. A partner's details are applied by the partner rules of
    `upsert_businesses` (what it may not change is recorded as a proposal), and a new contact address of
    a business that opted out is opted out too.

    With `create_first` (SQLite, where writers take turns), the businesses that new events create are written
    before those events, found new by a read of their keys, so each event row goes in attached instead of being
    written again: if the unique constraint then finds one of them stored meanwhile (another process),
    DuplicateRace is raised and the caller must roll back and call again without it.
    """
    if not events:
        return []
    keys = [(e.source, e.external_id) for e in events]
    first: dict[tuple[str, str], int] = {}
    for i, key in enumerate(keys):
        first.setdefault(key, i)  # the same event twice in one batch: the first copy speaks, the others are duplicates
    news = [events[i] for i in first.values()]
    stored = stored_details(conn, {e.siret for e in news if e.siret}) if news else {}
    created: dict[str, int] = {}
    creators: list[EventIn] = []
    if create_first:
        creators = [e for e in news if e.business is not None and e.siret and e.siret not in stored]
        if creators:
            known_keys = stored_keys(conn, [(e.source, e.external_id) for e in creators])
            creators = [e for e in creators if (e.source, e.external_id) not in known_keys]
            created = _upsert_details(conn, creators, partner_id, now)
    rows = []
    append = rows.append
    for e in news:
        siret = e.siret
        if siret:
            known = stored.get(siret)
            business_id = known.id if known else created.get(siret)
        else:
            business_id = None
        # In _EVENT_COLUMNS order; conversions are attributed by the metrics, not planned into journeys.
        append((e.source, partner_id, e.external_id, e.type, siret, e.siren or (siret[:9] if siret else None),
                business_id, e.occurred_on, now, "accepted" if business_id else "pending",
                e.type in CONVERSION_TYPES, e.payload))
    rows.sort(key=_EVENT_KEY)  # one lock order for concurrent calls
    # With the driver's own parameters (no per-row processing by SQLAlchemy), 500 rows per statement.
    inserted = {(s, x): i for i, s, x in insert_values(conn, _insert_events(conn.dialect.name), _EVENT_COLUMNS, rows)}
    if creators and any((e.source, e.external_id) not in inserted for e in creators):
        raise DuplicateRace
    creating = {id(e) for e in creators}
    applied = [e for e in news if id(e) not in creating and e.business is not None
               and (e.source, e.external_id) in inserted]
    ids = {siret: d.id for siret, d in stored.items()} | created
    if applied:
        ids.update(_apply_details(conn, applied, stored, inserted, partner_id, now))
        # Events stored as pending whose business their own details just created: attach them.
        attach = [{"eid": inserted[(e.source, e.external_id)], "bid": ids[e.siret]}
                  for e in news if (e.source, e.external_id) in inserted and e.siret not in stored
                  and e.siret not in created and e.siret in ids]
        if attach:  # the driver's executemany: one statement, plain tuples
            mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
            driver_sql(conn, f"UPDATE triggerevent SET business_id = {mark}, status = 'accepted' WHERE id = {mark}",
                       [(a["bid"], a["eid"]) for a in attach])
    out: list[Stored] = []
    append = out.append
    for i, (e, key) in enumerate(zip(events, keys, strict=True)):
        event_id = inserted.get(key) if first[key] == i else None
        if event_id is None:
            append(Stored(e.external_id, "duplicate"))
        else:
            business_id = ids.get(e.siret) if e.siret else None
            append(Stored(e.external_id, "accepted" if business_id else "pending", event_id, False, business_id))
    return out


# An event row's columns, in the order `store_events_in` gives them (tuples: no dict per event).
_EVENT_COLUMNS = ("source", "partner_id", "external_id", "type", "siret", "siren", "business_id", "occurred_on",
                  "received_at", "status", "planned", "payload")
_EVENT_KEY = itemgetter(_EVENT_COLUMNS.index("source"), _EVENT_COLUMNS.index("external_id"))


def stored_keys(conn: Connection, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (source, external_id) pairs among `keys` already stored (one read per 900 keys and source; plain
    SQL: building the statement would cost more than running it for a single-event request)."""
    found: set[tuple[str, str]] = set()
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    for source, ids in by_source.items():
        for part in chunks(sorted(set(ids)), 900):
            sql = (f"SELECT external_id FROM triggerevent WHERE source = {mark} "
                   f"AND external_id IN ({', '.join([mark] * len(part))})")
            found.update((source, x) for (x,) in driver_sql(conn, sql, (source, *part)).rows)
    return found


def _apply_details(conn: Connection, events: Sequence[EventIn], stored: dict[str, StoredDetails],
                   inserted: dict[tuple[str, str], int], partner_id: int | None,
                   now: dt.datetime) -> dict[str, int]:
    """Apply the business details of newly stored events; returns {siret: business id}.

    For a partner: what it may not change is recorded as a proposal, and where it brings a new e-mail or
    phone number to a business that opted out of that channel, the new address is opted out as well.
    """
    if partner_id is None:
        return _upsert_details(conn, events, partner_id, now)
    proposals, fresh = [], []
    for e in events:
        facts, known = e.business, stored.get(e.siret or "")
        if facts is None or known is None:
            continue
        for name, current, proposed in partner_proposals(known, facts, e.source):
            proposals.append({"business_id": known.id, "partner_id": partner_id,
                              "event_id": inserted[(e.source, e.external_id)], "field": name,
                              "current_value": current, "proposed_value": proposed})
        for contact in facts.contacts:
            if contact.kind in ("email", "phone"):
                was = known.email if contact.kind == "email" else known.phone
                if normalize_address(contact.kind, contact.value) != normalize_address(contact.kind, was or ""):
                    fresh.append((known.id, contact.kind, contact.value))
    if fresh:  # before the upsert: the addresses the business had are still the stored ones
        inherit_suppressions(conn, fresh, source=f"partner:{partner_id}", now=now)
    if proposals:
        record_proposals(conn, proposals, now=now)
    return _upsert_details(conn, events, partner_id, now)


def _upsert_details(conn: Connection, events: Sequence[EventIn], partner_id: int | None,
                    now: dt.datetime) -> dict[str, int]:
    """The business details of these events upserted (by a partner's rules when `partner_id`); {siret: id}."""
    if partner_id is None:
        return upsert_businesses(conn, [e.business for e in events if e.business is not None], now=now)
    ids: dict[str, int] = {}
    for source in sorted({e.source for e in events}):
        ids.update(upsert_businesses(conn, [e.business for e in events if e.source == source and e.business],
                                     created_by=source, now=now))
    return ids
