"""Partner intake shared by the API and partner files: the token's scope, then storage with its effects.

One path for both doors, so a file and an API call accept, refuse and change exactly the same things.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from orchestrator.app.collector import collector_paused
from store.conversions import attribute_conversions
from store.db import BUSY_TIMEOUT_MS
from store.effects import write_event_effects
from store.events import DuplicateRace, Stored, StoredPlace, erased_among, store_events_in, stored_places
from triggers.lifecycle import event_effects
from triggers.model import CONVERSION_TYPES, EventIn, Reject
from triggers.partner_api import is_utf8, validate_item
from triggers.payload_schema import Dropped
from triggers.scope import scope_reject

UNPLACED = "établissement déjà connu, sans commune: impossible de vérifier qu'il est dans votre territoire"


@dataclass(frozen=True)
class PartnerScope:
    """A partner's scope (allowed types, territory), read once and applied in memory to many events.

    The one rule of both doors: the API checks each request with it, a partner file each chunk of rows.
    """

    allowed_types: tuple[str, ...] = ()
    territory: tuple[str, ...] = ()

    def rejects(self, engine: Engine, events: Sequence[EventIn]) -> list[Reject | None]:
        """For each event, why it is outside the scope (type, territory), or None.

        A business the store knows is judged where the store places it, whatever the event says: a partner
        attaches events only to businesses inside its territory, or to its own (created by its events and
        not placed by Sirene since), judged on the place it gives. A known business with no known place that
        is not its own is refused. A business nobody knows is judged on the event's commune; without one
        it is let in (pending) until Sirene places it. One bulk store read per call.
        """
        known: dict[str, StoredPlace] = {}
        if self.territory:
            allowed = self.allowed_types  # a type already refused needs no place
            known = stored_places(engine, [e.siret for e in events if e.siret and (not allowed or e.type in allowed)])
        out = []
        for e in events:
            said = e.business.commune_code if e.business else None
            place = known.get(e.siret or "")
            if place is None:
                commune = said
            elif place.head_office is None and place.created_by == e.source:
                commune = said or place.commune_code
            else:
                commune = place.commune_code
                if commune is None and self.territory and (not self.allowed_types or e.type in self.allowed_types):
                    out.append(Reject(None, "siret", UNPLACED))
                    continue
            out.append(scope_reject(e, allowed_types=self.allowed_types, territory=self.territory,
                                    commune_code=commune))
        return out


def scope_rejects(engine: Engine, events: Sequence[EventIn], *, allowed_types: Sequence[str],
                  territory: Sequence[str]) -> list[Reject | None]:
    """`PartnerScope.rejects` for a scope given as lists (the API's token)."""
    return PartnerScope(tuple(allowed_types), tuple(territory)).rejects(engine, events)


def withhold_erased(conn: Connection, secret: str, events: Sequence[EventIn]) -> tuple[list[EventIn], set[int]]:
    """The events with those about an erased identity (SIRET, e-mail or phone kept as a keyed hash) stripped
    of their contacts, name, street and payload and marked not to contact; returns them and the positions
    stripped."""
    hit = erased_among(conn, secret, events)
    out = list(events)
    for i in hit:
        e = events[i]
        # The name and street of a sole trader are personal too; what places the business (NAF, commune) is not.
        facts = (replace(e.business, contacts=[], do_not_contact=True, name=None, street=None)
                 if e.business else None)
        out[i] = replace(e, business=facts, payload={})
    return out, hit


def apply_event_effects(conn: Connection, events: Iterable[tuple[int, str, Any]], today: dt.date) -> None:
    """What newly attached events (business id, type, date) change on their business, in the caller's
    transaction: the life-cycle stage follows the event, and a closure stops all outreach."""
    stages, closing = event_effects(events, today)
    write_event_effects(conn, stages, closing)


class WriterBusy(Exception):
    """SQLite's writer is taken (by another thread or process) and the caller asked not to wait: nothing was
    written; the caller runs the work again where waiting is fine."""


def store_with_effects(engine: Engine, events: Sequence[EventIn], *, partner_id: int | None,
                       today: dt.date, now: dt.datetime, secret: str | None = None, wait: bool = True) -> list[Stored]:
    """Store events idempotently and, in the same transaction, what the new ones change: the life-cycle stage
    of their business (a closure stops outreach), and conversions attributed to the business's latest
    enrollment, as of `today` (the local date), stamped `now` (aware UTC). A crash leaves all of it or none of it;
    a rerun reports duplicates and changes nothing.

    With the secret key, an event about an erased identity is stored without its contacts nor payload and
    its business is not to be contacted (`Stored.withheld`).

    Without `wait` (SQLite only), WriterBusy is raised at once, with nothing written, when another thread of this
    process or another process is writing: the API stores a small batch in its event loop that way."""
    sqlite = engine.dialect.name == "sqlite"
    try:
        return _store_with_effects(engine, events, partner_id, today, now, secret, create_first=sqlite, wait=wait)
    except DuplicateRace:  # another process stored one of these events meanwhile: all over, events first
        return _store_with_effects(engine, events, partner_id, today, now, secret, create_first=False, wait=wait)


_SQLITE_WRITER = threading.Lock()


@contextlib.contextmanager
def _writer_turn(engine: Engine, wait: bool) -> Iterator[None]:
    """This process's turn to write. SQLite takes one writer at a time: threads of this process wait their turn
    here rather than in SQLite's busy handler, which sleeps in growing steps (single-event requests from a few
    clients at once queued there for milliseconds each). PostgreSQL writers run side by side."""
    if engine.dialect.name != "sqlite":
        yield
        return
    if not _SQLITE_WRITER.acquire(blocking=wait):
        raise WriterBusy
    try:
        yield
    finally:
        _SQLITE_WRITER.release()


@contextlib.contextmanager
def _not_waiting(conn: Connection, wait: bool) -> Iterator[None]:
    """Without `wait`: SQLite's busy handler off for the transaction, and its "database is locked" turned into
    WriterBusy (the transaction is rolled back as the error leaves it)."""
    if wait:
        yield
        return
    conn.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        yield
    except OperationalError as exc:
        if getattr(exc.orig, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
            raise WriterBusy from exc
        raise
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")  # as store.db sets it


def _store_with_effects(engine: Engine, events: Sequence[EventIn], partner_id: int | None, today: dt.date,
                        now: dt.datetime, secret: str | None, *, create_first: bool, wait: bool) -> list[Stored]:
    # PostgreSQL writers run side by side, so there the events go in before the businesses they create (one lock
    # order for concurrent batches: `store_events_in`).
    with _writer_turn(engine, wait), engine.begin() as conn, _not_waiting(conn, wait):
        withheld: set[int] = set()
        if secret and events:
            events, withheld = withhold_erased(conn, secret, events)
        stored = store_events_in(conn, events, partner_id=partner_id, now=now, create_first=create_first)
        if withheld:
            stored = [replace(s, withheld=True) if i in withheld else s for i, s in enumerate(stored)]
        # The new events attached to a business, as stored (no need to read them back).
        attached = [(s.business_id, e.type, e.occurred_on) for s, e in zip(stored, events, strict=True)
                    if s.status == "accepted" and s.event_id is not None and s.business_id is not None]
        if attached:
            apply_event_effects(conn, attached, today)
        conversions = [s.event_id for s, e in zip(stored, events, strict=True)
                       if s.event_id is not None and e.type in CONVERSION_TYPES]
        if conversions:
            attribute_conversions(conn, conversions)
    return stored


def _rejected(index: int, raw: Any, reject: Reject) -> dict[str, Any]:
    ext = raw.get("external_id") if isinstance(raw, dict) else None
    if not isinstance(ext, str) or "\x00" in ext or not is_utf8(ext):  # a number, a list... or text no store keeps
        ext = None
    return {"index": index, "external_id": ext, "status": "rejected", "field": reject.field, "reason": reject.reason}


def accept_batch(engine: Engine, partner: Any, raw_items: list[Any], secret: str | None, today: dt.date,
                 now: dt.datetime, *, wait: bool = True) -> tuple[dict[str, int], list[dict]]:
    """`_accept_batch` with the cyclic garbage collector paused: a batch's items, events and rows live for the whole
    request, and without the pause every ten or so batches the collector walked the server's 200,000 objects."""
    with collector_paused():
        return _accept_batch(engine, partner, raw_items, secret, today, now, wait)


def _accept_batch(engine: Engine, partner: Any, raw_items: list[Any], secret: str | None, today: dt.date,
                  now: dt.datetime, wait: bool) -> tuple[dict[str, int], list[dict]]:
    """A partner's batch through the API: validate each item, check the token's scope, store the valid ones
    (committed before returning; `today` is the local date: an event dated after tomorrow is refused). The counts
    and one status per item as a dict (index, external_id, status, field, reason): the API writes them out as they
    are, with no model built and validated per item. Without `wait`, see `store_with_effects`."""
    statuses: list[dict[str, Any] | None] = [None] * len(raw_items)
    checked: list[tuple[int, EventIn]] = []
    dropped = Dropped()
    source, name = f"partner:{partner.id}", partner.name
    for i, raw in enumerate(raw_items):
        result = validate_item(raw, source, name, dropped=dropped, today=today)
        if isinstance(result, Reject):
            statuses[i] = _rejected(i, raw, result)
        else:
            checked.append((i, result))
    # The same scope as partner files: allowed types, and the territory where the business is.
    outside = scope_rejects(engine, [e for _, e in checked], allowed_types=partner.allowed_types or [],
                            territory=partner.territory or [])
    valid: list[tuple[int, EventIn]] = []
    for (i, event), reject in zip(checked, outside, strict=True):
        if reject is not None:
            statuses[i] = _rejected(i, raw_items[i], reject)
        else:
            valid.append((i, event))
    # With the secret key: an erased person's events are kept without their contacts.
    stored = store_with_effects(engine, [e for _, e in valid], partner_id=partner.id, today=today, now=now,
                                secret=secret, wait=wait)
    for (i, event), fate in zip(valid, stored, strict=True):
        statuses[i] = {"index": i, "external_id": event.external_id, "status": fate.status, "field": None,
                       "reason": None}
    items = [s for s in statuses if s is not None]
    by_status = Counter(s["status"] for s in items)
    counts = {"accepted": by_status["accepted"] + by_status["pending"], "duplicate": by_status["duplicate"],
              "rejected": by_status["rejected"], "withheld": sum(fate.withheld for fate in stored),
              "dropped_fields": dropped.fields}
    return counts, items
