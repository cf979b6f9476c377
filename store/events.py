"""Event intake: store normalised events once per (source, external_id), committed before any answer."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from store.businesses import ids_for_sirets, upsert_businesses
from store.models import Partner, TriggerEvent, utcnow
from store.sql import chunks, insert_for_dialect
from triggers.model import CONVERSION_TYPES, EventIn

EVENTS = TriggerEvent.__table__
PARTNERS = Partner.__table__


@dataclass(frozen=True, slots=True)
class Stored:
    """The fate of one event: accepted (new), duplicate (already stored), pending (business unknown)."""

    external_id: str
    status: str
    event_id: int | None = None


def hash_token(token: str) -> str:
    """The stored form of a partner token (SHA-256: tokens are long random strings, not passwords)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh partner token, shown once."""
    return "dcl_" + secrets.token_urlsafe(32)


# Partners seen recently, by token hash: a partner posting single events would otherwise pay one query
# per request. A revoked or rotated token stops working within TOKEN_CACHE_SECONDS in every process
# (at once in the process that rotated it).
TOKEN_CACHE_SECONDS = 10.0
_token_cache: dict[str, tuple[float, Partner]] = {}


def forget_tokens() -> None:
    """Drop the cached partners (after a rotation or revocation)."""
    _token_cache.clear()


def partner_for_token(engine: Engine, token: str) -> Partner | None:
    """The active partner owning `token`, if any."""
    key = hash_token(token)
    cached = _token_cache.get(key)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    with engine.connect() as conn:
        row = conn.execute(select(PARTNERS).where(PARTNERS.c.token_hash == key, PARTNERS.c.active.is_(True))).first()
    if row is None:
        return None
    partner = Partner(**row._mapping)
    _token_cache[key] = (time.monotonic() + TOKEN_CACHE_SECONDS, partner)
    return partner


@lru_cache(maxsize=4)
def _insert_events(dialect: str):
    # Built once per dialect (statement construction dominates a one-event request).
    stmt = insert_for_dialect(dialect, EVENTS).on_conflict_do_nothing(index_elements=["source", "external_id"])
    return stmt.returning(EVENTS.c.id, EVENTS.c.source, EVENTS.c.external_id)


def store_events(engine: Engine, events: Sequence[EventIn], partner_id: int | None = None) -> list[Stored]:
    """Upsert the businesses the events describe, then insert the events idempotently, in one transaction."""
    if not events:
        return []
    with engine.begin() as conn:
        return store_events_in(conn, events, partner_id)


def store_events_in(conn: Connection, events: Sequence[EventIn], partner_id: int | None = None) -> list[Stored]:
    """`store_events` inside the caller's transaction (so what follows from the events commits with them).

    Concurrent calls with the same (source, external_id) store it once: the unique constraint decides,
    and the loser reports "duplicate".
    """
    if not events:
        return []
    facts = [e.business for e in events if e.business is not None]
    business_ids = upsert_businesses(conn, facts) if facts else {}
    missing = {e.siret for e in events if e.siret and e.siret not in business_ids}
    if missing:
        business_ids.update(ids_for_sirets(conn, missing))
    now = utcnow()
    rows = []
    for e in events:
        business_id = business_ids.get(e.siret) if e.siret else None
        rows.append({
            "source": e.source,
            "partner_id": partner_id,
            "external_id": e.external_id,
            "type": e.type,
            "siret": e.siret,
            "siren": e.siren or (e.siret[:9] if e.siret else None),
            "business_id": business_id,
            "occurred_on": e.occurred_on,
            "received_at": now,
            "status": "accepted" if business_id else "pending",
            # Conversions are attributed by the metrics, not planned into journeys.
            "planned": e.type in CONVERSION_TYPES,
            "payload": e.payload,
        })
    inserted: dict[tuple[str, str], int] = {}
    for part in chunks(rows, 500):
        result = conn.execute(_insert_events(conn.dialect.name), part)
        inserted.update({(s, x): i for i, s, x in result})
    out = []
    reported: set[tuple[str, str]] = set()
    for row in rows:
        key = (row["source"], row["external_id"])
        event_id = inserted.get(key)
        if event_id is None or key in reported:
            out.append(Stored(row["external_id"], "duplicate"))
        else:
            reported.add(key)
            out.append(Stored(row["external_id"], "accepted" if row["status"] == "accepted" else "pending", event_id))
    return out
