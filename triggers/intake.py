"""Partner intake shared by the API and partner files: the token's scope, then storage with its effects.

One path for both doors, so a file and an API call accept, refuse and change exactly the same things.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Engine

from store.events import Stored, store_events_in
from store.models import Business, TriggerEvent
from store.sql import chunks
from triggers.effects import apply_event_effects
from triggers.model import CONVERSION_TYPES, EventIn, Reject
from triggers.scope import scope_reject

BUSINESS = Business.__table__
EVENTS = TriggerEvent.__table__


@dataclass(frozen=True)
class PartnerScope:
    """A partner's scope (allowed types, territory), read once and applied in memory to many events.

    The one rule of both doors: the API checks each request with it, a partner file each chunk of rows.
    """

    allowed_types: tuple[str, ...] = ()
    territory: tuple[str, ...] = ()

    def rejects(self, engine: Engine, events: Sequence[EventIn]) -> list[Reject | None]:
        """For each event, why it is outside the scope (type, territory), or None.

        Where the business is comes from the event, else from the store (one bulk read); unknown places are
        let in and judged when Sirene places the business.
        """
        known: dict[str, str | None] = {}
        if self.territory:
            allowed = self.allowed_types  # a type already refused needs no place
            missing = sorted({e.siret for e in events if e.siret and not (e.business and e.business.commune_code)
                              and (not allowed or e.type in allowed)})
            if missing:
                with engine.connect() as conn:
                    for part in chunks(missing, 900):
                        known.update(conn.execute(select(BUSINESS.c.siret, BUSINESS.c.commune_code)
                                                  .where(BUSINESS.c.siret.in_(part))).all())
        out = []
        for e in events:
            commune = (e.business.commune_code if e.business else None) or known.get(e.siret or "")
            out.append(scope_reject(e, allowed_types=self.allowed_types, territory=self.territory,
                                    commune_code=commune))
        return out


def scope_rejects(engine: Engine, events: Sequence[EventIn], *, allowed_types: Sequence[str],
                  territory: Sequence[str]) -> list[Reject | None]:
    """`PartnerScope.rejects` for a scope given as lists (the API's token)."""
    return PartnerScope(tuple(allowed_types), tuple(territory)).rejects(engine, events)


def store_with_effects(engine: Engine, events: Sequence[EventIn], *, partner_id: int | None,
                       today: dt.date | None = None) -> list[Stored]:
    """Store events idempotently and, in the same transaction, what the new ones change: the life-cycle stage
    of their business (a closure stops outreach), and conversions attributed to the business's latest
    enrollment. A crash leaves all of it or none of it; a rerun reports duplicates and changes nothing."""
    from store.conversions import attribute_conversions

    with engine.begin() as conn:
        stored = store_events_in(conn, events, partner_id=partner_id)
        attached = [s.event_id for s in stored if s.status == "accepted" and s.event_id is not None]
        if attached:
            found = []
            for part in chunks(attached, 900):
                found += conn.execute(select(EVENTS.c.business_id, EVENTS.c.type, EVENTS.c.occurred_on)
                                      .where(EVENTS.c.id.in_(part), EVENTS.c.business_id.is_not(None))).all()
            apply_event_effects(conn, [tuple(f) for f in found], today or dt.date.today())
        conversions = [s.event_id for s, e in zip(stored, events, strict=True)
                       if s.event_id is not None and e.type in CONVERSION_TYPES]
        if conversions:
            attribute_conversions(conn, conversions)
    return stored
