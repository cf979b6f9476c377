"""Opt-outs: global and permanent for an address or number, whatever campaign or tenant sent."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store.models import Interaction, Message, Suppression, utcnow
from store.sql import insert_for

SUPPRESSIONS = Suppression.__table__
MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__

# Channels that share one address space: an opt-out by SMS also stops calls to that number.
ADDRESS_KIND = {"email": "email", "sms": "phone", "call": "phone", "letter": "postal", "webhook": "webhook"}


def normalize_address(kind: str, address: str) -> str:
    """The comparable form of an address: lower-case e-mail, E.164 number as given."""
    address = address.strip()
    return address.lower() if kind == "email" else address


def suppress(conn: Connection, kind: str, address: str, reason: str, source: str | None = None) -> None:
    """Record an opt-out (idempotent) and cancel every planned message to that address."""
    address = normalize_address(kind, address)
    stmt = insert_for(conn, SUPPRESSIONS).on_conflict_do_nothing(index_elements=["channel", "address"])
    conn.execute(stmt, {"channel": kind, "address": address, "reason": reason, "source": source,
                        "created_at": utcnow()})
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
        select(SUPPRESSIONS.c.address).where(SUPPRESSIONS.c.channel == kind, SUPPRESSIONS.c.address.in_(wanted))
    )
    return {r[0] for r in rows}


def unsubscribe_message(conn: Connection, message_id: int, source: str = "unsubscribe_link") -> bool:
    """Opt out the recipient of one message (the link's owner); False when the message is unknown."""
    msg = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
    if msg is None:
        return False
    kind = ADDRESS_KIND.get(msg.channel, msg.channel)
    if msg.recipient:
        suppress(conn, kind, msg.recipient, "unsubscribe", source)
    conn.execute(INTERACTIONS.insert(), {
        "business_id": msg.business_id, "message_id": msg.id, "campaign_id": msg.campaign_id,
        "enrollment_id": msg.enrollment_id, "kind": "unsubscribe", "at": utcnow(), "data": {"source": source},
    })
    return True
