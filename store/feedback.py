"""What comes back from the channels, written to the store: SMS replies and STOP, e-mail bounces.

The web layer (a provider's callback URL, a bounce mailbox reader) parses with the channel's pure
parser and hands the values (`orchestrator.core.outcomes`) here, inside its transaction:

    replies = integrations.sms_http.parse_inbound(raw_body)        # InboundReply values
    record_sms_replies(conn, replies, source="octopush", now=unit.now)
    receipts = integrations.sms_http.parse_delivery(raw_body)      # DeliveryReceipt values
    record_sms_deliveries(conn, receipts, source="octopush", now=unit.now)
    bounces = integrations.email_bounce.parse_dsn(raw_email)        # Bounce values
    record_bounces(conn, bounces, source="bounce-mailbox", now=unit.now)

A STOP is a global, permanent opt-out of the number (it also stops calls to it); a hard bounce, of the
address. Each reply is tied to the message it answers when it can be (by our reference, the provider's
id, or the last SMS sent to that number) and kept as an interaction for the operator.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable

from sqlalchemy import or_, select, update
from sqlalchemy.engine import Connection

from orchestrator.core.outcomes import (
    DELIVERED,
    INVALID,
    OPTED_OUT,
    UNDELIVERED,
    Bounce,
    DeliveryReceipt,
    InboundReply,
)
from store.models import Interaction, Message, MessageEvent
from store.suppressions import suppress

MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__
EVENTS = MessageEvent.__table__


def _message_for_reply(conn: Connection, reply: InboundReply):
    if reply.reference:
        found = conn.execute(
            select(MESSAGES).where(
                or_(MESSAGES.c.rfc_message_id == reply.reference, MESSAGES.c.provider_id == reply.reference)
            )
        ).first()
        if found is not None:
            return found
    return conn.execute(
        select(MESSAGES)
        .where(
            MESSAGES.c.channel == "sms", MESSAGES.c.recipient == reply.number, MESSAGES.c.sent_at.is_not(None)
        )
        .order_by(MESSAGES.c.sent_at.desc(), MESSAGES.c.id.desc())
        .limit(1)
    ).first()


def _interaction(conn: Connection, message, kind: str, data: dict, now: dt.datetime) -> None:
    conn.execute(
        INTERACTIONS.insert(),
        {
            "business_id": message.business_id if message is not None else None,
            "message_id": message.id if message is not None else None,
            "campaign_id": message.campaign_id if message is not None else None,
            "enrollment_id": message.enrollment_id if message is not None else None,
            "kind": kind,
            "at": now,
            "data": data,
        },
    )


def record_sms_replies(conn: Connection, replies: Iterable[InboundReply], *, source: str, now: dt.datetime) -> Counter:
    """Record replies at `now`: STOP opts the number out everywhere; others are kept as "sms_reply" interactions."""
    counts: Counter = Counter()
    for reply in replies:
        message = _message_for_reply(conn, reply)
        received = reply.received_at.isoformat() if reply.received_at else None
        data = {"source": source, "text": reply.text[:500], "number": reply.number, "received_at": received}
        if reply.is_stop:
            suppress(conn, "phone", reply.number, "stop_reply", source, now=now)
            _interaction(conn, message, "unsubscribe", {**data, "via": "sms_stop"}, now)
            counts["opt_outs"] += 1
        else:
            _interaction(conn, message, "sms_reply", data, now)
            counts["replies"] += 1
        if message is None:
            counts["unmatched"] += 1
    return counts


def record_bounces(conn: Connection, bounces: Iterable[Bounce], *, source: str, now: dt.datetime) -> Counter:
    """Record bounces at `now`: a hard one opts the address out and marks its message failed; a soft one is
    noted."""
    counts: Counter = Counter()
    for bounce in bounces:
        if bounce.action not in ("failed", "delayed"):
            continue
        message = None
        if bounce.outbox_id is not None:
            message = conn.execute(select(MESSAGES).where(MESSAGES.c.id == bounce.outbox_id)).first()
        detail = f"{bounce.status} {bounce.diagnostic}".strip()[:500]
        if bounce.is_hard:
            suppress(conn, "email", bounce.recipient, "bounce", source, now=now)
            counts["hard"] += 1
            if message is not None:
                conn.execute(
                    update(MESSAGES)
                    .where(MESSAGES.c.id == message.id)
                    .values(status="failed", last_error=f"rebond définitif : {detail}")
                )
                conn.execute(
                    EVENTS.insert(),
                    {"message_id": message.id, "status": "bounced", "at": now, "detail": detail},
                )
        else:
            counts["soft"] += 1
            if message is not None:
                conn.execute(
                    EVENTS.insert(),
                    {"message_id": message.id, "status": "delayed", "at": now, "detail": detail},
                )
        if message is None:
            counts["unmatched"] += 1
    return counts


def record_sms_deliveries(conn: Connection, receipts: Iterable[DeliveryReceipt], *, source: str,
                          now: dt.datetime) -> Counter:
    """Record delivery receipts (one without its own time at `now`): delivered marks the message so; a number
    that does not exist, or that the provider holds as opted out, is suppressed; an undelivered SMS is noted in
    its history."""
    counts: Counter = Counter()
    for receipt in receipts:
        message = conn.execute(
            select(MESSAGES).where(
                or_(
                    MESSAGES.c.provider_id == receipt.reference,
                    MESSAGES.c.rfc_message_id == receipt.reference,
                )
            )
        ).first()
        if message is None:
            counts["unmatched"] += 1
            continue
        at = receipt.at or now
        number = receipt.number or message.recipient
        if receipt.state == DELIVERED:
            # Only a message that left becomes delivered: a later click or failure is not undone. A receipt
            # may beat the dispatcher's own record (handed_over), or settle a message left `unknown`.
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == message.id, MESSAGES.c.status.in_(("sent", "handed_over", "unknown")))
                .values(status="delivered")
            )
            conn.execute(
                EVENTS.insert(),
                {
                    "message_id": message.id,
                    "status": "delivered",
                    "at": at,
                    "detail": f"{source}: {receipt.provider_status}",
                },
            )
        elif receipt.state in (UNDELIVERED, INVALID, OPTED_OUT):
            detail = f"{source}: {receipt.provider_status}"
            conn.execute(
                update(MESSAGES)
                .where(MESSAGES.c.id == message.id)
                .values(status="failed", last_error=f"SMS non distribué ({detail})")
            )
            conn.execute(
                EVENTS.insert(),
                {"message_id": message.id, "status": "undelivered", "at": at, "detail": detail},
            )
            if receipt.state == INVALID and number:
                suppress(conn, "phone", number, "bounce", source, now=now)
            elif receipt.state == OPTED_OUT and number:
                suppress(conn, "phone", number, "stop_reply", source, now=now)
        counts[receipt.state] += 1
    return counts
