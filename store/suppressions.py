"""Opt-outs: global and permanent for an address or number, whatever campaign or tenant sent.

They follow the business too: a new e-mail or number for a business that opted out of that channel is
opted out when it arrives (`inherit_suppressions`), so a new address never lifts an opt-out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store.models import Business, Interaction, Message, Suppression
from store.sql import among, chunks, insert_for

SUPPRESSIONS = Suppression.__table__
MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__
BUSINESS = Business.__table__

# Channels that share one address space: an opt-out by SMS also stops calls to that number.
ADDRESS_KIND = {"email": "email", "sms": "phone", "call": "phone", "letter": "postal", "webhook": "webhook"}


def normalize_address(kind: str, address: str) -> str:
    """The comparable form of an address: lower-case e-mail, E.164 number as given."""
    address = address.strip()
    return address.lower() if kind == "email" else address


def suppress(conn: Connection, kind: str, address: str, reason: str, source: str | None = None, *,
             now: dt.datetime) -> None:
    """Record an opt-out at `now` (idempotent) and cancel every planned message to that address."""
    address = normalize_address(kind, address)
    stmt = insert_for(conn, SUPPRESSIONS).on_conflict_do_nothing(index_elements=["channel", "address"])
    conn.execute(stmt, {"channel": kind, "address": address, "reason": reason, "source": source,
                        "created_at": now})
    channels = [c for c, k in ADDRESS_KIND.items() if k == kind]
    conn.execute(
        update(MESSAGES)
        .where(MESSAGES.c.status == "planned", MESSAGES.c.channel.in_(channels),
               MESSAGES.c.recipient.is_not(None))
        .where(MESSAGES.c.recipient.ilike(address) if kind == "email" else MESSAGES.c.recipient == address)
        .values(status="cancelled", last_error="opt-out")
    )


def suppressed_among(conn: Connection, kind: str, addresses: list[str]) -> set[str]:
    """Which of `addresses` (normalised) have opted out."""
    if not addresses:
        return set()
    wanted = {normalize_address(kind, a) for a in addresses}
    rows = conn.execute(
        select(SUPPRESSIONS.c.address)
        .where(SUPPRESSIONS.c.channel == kind, among(conn, SUPPRESSIONS.c.address, wanted))
    )
    return {r[0] for r in rows}


def opted_out_kinds(conn: Connection, business_ids: Iterable[int]) -> dict[int, set[str]]:
    """For each business, the address kinds ("email", "phone") it opted out of: through its stored address
    or any address it was written to."""
    ids = sorted(set(business_ids))
    addresses: dict[tuple[str, str], set[int]] = {}
    for part in chunks(ids, 900):
        for id_, email, phone in conn.execute(select(BUSINESS.c.id, BUSINESS.c.email, BUSINESS.c.phone)
                                              .where(BUSINESS.c.id.in_(part))):
            if email:
                addresses.setdefault(("email", normalize_address("email", email)), set()).add(id_)
            if phone:
                addresses.setdefault(("phone", normalize_address("phone", phone)), set()).add(id_)
        for id_, channel, recipient in conn.execute(
                select(MESSAGES.c.business_id, MESSAGES.c.channel, MESSAGES.c.recipient).distinct()
                .where(MESSAGES.c.business_id.in_(part), MESSAGES.c.recipient.is_not(None))):
            kind = ADDRESS_KIND.get(channel, channel)
            if kind in ("email", "phone"):
                addresses.setdefault((kind, normalize_address(kind, recipient)), set()).add(id_)
    out: dict[int, set[str]] = {}
    for kind in ("email", "phone"):
        wanted = sorted(a for k, a in addresses if k == kind)
        for part in chunks(wanted, 900):
            for address in suppressed_among(conn, kind, part):
                for id_ in addresses[(kind, address)]:
                    out.setdefault(id_, set()).add(kind)
    return out


def inherit_suppressions(conn: Connection, fresh: Iterable[tuple[int, str, str]], source: str | None = None, *,
                         now: dt.datetime) -> int:
    """Opt out the new addresses (business id, "email" | "phone", address) of businesses that opted out of
    that kind; call it before the new addresses replace the stored ones. Returns how many were opted out."""
    fresh = list(fresh)
    if not fresh:
        return 0
    kinds = opted_out_kinds(conn, {b for b, _, _ in fresh})
    done = 0
    for business_id, kind, address in fresh:
        if kind in kinds.get(business_id, ()):
            suppress(conn, kind, address, "inherited", source or f"business:{business_id}", now=now)
            done += 1
    return done


def unsubscribe_message(conn: Connection, message_id: int, source: str = "unsubscribe_link", *,
                        now: dt.datetime) -> bool:
    """Opt out the recipient of one message (the link's owner) at `now`; False when the message is unknown."""
    msg = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
    if msg is None:
        return False
    kind = ADDRESS_KIND.get(msg.channel, msg.channel)
    if msg.recipient:
        suppress(conn, kind, msg.recipient, "unsubscribe", source, now=now)
    conn.execute(INTERACTIONS.insert(), {
        "business_id": msg.business_id, "message_id": msg.id, "campaign_id": msg.campaign_id,
        "enrollment_id": msg.enrollment_id, "kind": "unsubscribe", "at": now, "data": {"source": source},
    })
    return True
