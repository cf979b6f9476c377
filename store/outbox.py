"""The outbox: claim due messages under a lease, fence each handoff, record every outcome.

Several dispatchers may run at once: a claim is a row-level lock (`FOR UPDATE SKIP LOCKED` on
PostgreSQL; SQLite serialises writers), and a send is recorded only while the claimer still holds
the lease, so a message is never handed over twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from integrations.base import Outcome, SendResult
from store.models import Business, Campaign, Message, MessageEvent, utcnow
from store.suppressions import ADDRESS_KIND, suppressed_among

MESSAGES = Message.__table__
HISTORY = MessageEvent.__table__
BUSINESS = Business.__table__
CAMPAIGNS = Campaign.__table__

MAX_ATTEMPTS = 8
BACKOFF_BASE = dt.timedelta(seconds=30)
BACKOFF_CAP = dt.timedelta(hours=6)


def backoff(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """Exponential delay before the next try (30 s, 1 min, 2 min ... capped), or the peer's Retry-After."""
    delay = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_CAP)
    if retry_after is not None:
        delay = max(delay, dt.timedelta(seconds=retry_after))
    return delay


def release_expired(conn: Connection, now: dt.datetime) -> int:
    """Give back messages whose claimer died: their lease ran out before any handoff."""
    result = conn.execute(
        update(MESSAGES).where(MESSAGES.c.status == "claimed", MESSAGES.c.lease_until < now)
        .values(status="planned", lease_owner=None, lease_until=None)
    )
    return result.rowcount or 0


def claim_due(conn: Connection, now: dt.datetime, limit: int, owner: str, lease: dt.timedelta,
              channels: Sequence[str] | None = None) -> list:
    """Claim up to `limit` due messages for `owner`; returns their rows."""
    due = (select(MESSAGES.c.id).where(MESSAGES.c.status == "planned", MESSAGES.c.due_at <= now)
           .order_by(MESSAGES.c.due_at, MESSAGES.c.id).limit(limit))
    if channels:
        due = due.where(MESSAGES.c.channel.in_(channels))
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (update(MESSAGES).where(MESSAGES.c.id.in_(due.scalar_subquery()))
            .values(status="claimed", lease_owner=owner, lease_until=now + lease)
            .returning(*MESSAGES.c))
    rows = sorted(conn.execute(stmt).all(), key=lambda r: (r.due_at, r.id))
    if rows:
        conn.execute(HISTORY.insert(), [{"message_id": r.id, "status": "claimed", "at": now, "detail": owner}
                                        for r in rows])
    return rows


def blocked_at_send_time(conn: Connection, rows: Sequence) -> dict[int, str]:
    """Messages that must not leave any more: opt-out, closure, not to contact, campaign paused or ended."""
    if not rows:
        return {}
    business_ids = {r.business_id for r in rows}
    state = {i: (s, d) for i, s, d in conn.execute(
        select(BUSINESS.c.id, BUSINESS.c.state, BUSINESS.c.do_not_contact).where(BUSINESS.c.id.in_(business_ids)))}
    campaign_status = dict(conn.execute(select(CAMPAIGNS.c.id, CAMPAIGNS.c.status)
                                        .where(CAMPAIGNS.c.id.in_({r.campaign_id for r in rows}))).all())
    by_kind: dict[str, list[str]] = {}
    for r in rows:
        if r.recipient:
            by_kind.setdefault(ADDRESS_KIND.get(r.channel, r.channel), []).append(r.recipient)
    suppressed = {(k, a) for k, addrs in by_kind.items() for a in suppressed_among(conn, k, addrs)}
    out = {}
    for r in rows:
        kind = ADDRESS_KIND.get(r.channel, r.channel)
        biz_state, do_not_contact = state.get(r.business_id, ("closed", True))
        address = (r.recipient or "").lower() if kind == "email" else r.recipient
        if (kind, address) in suppressed:
            out[r.id] = "opted_out"
        elif biz_state != "active":
            out[r.id] = "closed"
        elif do_not_contact:
            out[r.id] = "not_to_contact"
        elif campaign_status.get(r.campaign_id) != "active":
            out[r.id] = f"campaign_{campaign_status.get(r.campaign_id, 'missing')}"
    return out


def cancel(conn: Connection, reasons: dict[int, str], owner: str, now: dt.datetime) -> None:
    """Stop messages that must not leave, with the reason in their history.

    A paused campaign's messages go back to planned (they leave when it resumes); the others are cancelled.
    """
    for message_id, reason in reasons.items():
        status = "planned" if reason == "campaign_paused" else "cancelled"
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == message_id, MESSAGES.c.lease_owner == owner)
                     .values(status=status, lease_owner=None, lease_until=None, last_error=reason))
        conn.execute(HISTORY.insert(), {"message_id": message_id, "status": status, "at": now, "detail": reason})


def mark_handed_over(engine: Engine, message_id: int, owner: str, rfc_message_id: str) -> bool:
    """Record the send of one message if `owner` still holds its lease (the fence); commits at once."""
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == message_id, MESSAGES.c.status == "claimed", MESSAGES.c.lease_owner == owner)
            .values(status="sent", sent_at=now, rfc_message_id=rfc_message_id, attempts=MESSAGES.c.attempts + 1)
        )
        if result.rowcount != 1:
            return False
        conn.execute(HISTORY.insert(), {"message_id": message_id, "status": "sent", "at": now})
    return True


def record_results(conn: Connection, results: Sequence[SendResult], owner: str, now: dt.datetime,
                   handed_over: set[int]) -> dict[str, int]:
    """Apply the channel's answers: confirm sends, schedule retries with backoff, fail permanent errors."""
    counts = {"sent": 0, "retry": 0, "failed": 0, "abandoned": 0}
    attempts = dict(conn.execute(select(MESSAGES.c.id, MESSAGES.c.attempts)
                                 .where(MESSAGES.c.id.in_([r.message_id for r in results]))).all())
    for r in results:
        tries = attempts.get(r.message_id, 0)
        if r.outcome is Outcome.ABANDONED:
            counts["abandoned"] += 1
            continue
        if r.outcome is Outcome.SENT:
            values = {"provider_id": r.provider_id or None, "last_error": None}
            if r.message_id not in handed_over:  # a channel without a handoff point (files, queues)
                values.update(status="sent", sent_at=now, attempts=tries + 1)
            guard = MESSAGES.c.lease_owner == owner
            conn.execute(update(MESSAGES).where(MESSAGES.c.id == r.message_id, guard).values(**values))
            if r.message_id not in handed_over:
                conn.execute(HISTORY.insert(), {"message_id": r.message_id, "status": "sent", "at": now,
                                                "detail": r.detail})
            counts["sent"] += 1
            continue
        tries = tries if r.message_id in handed_over else tries + 1
        if r.outcome is Outcome.TRANSIENT and tries < MAX_ATTEMPTS:
            values = {"status": "planned", "due_at": now + backoff(tries, r.retry_after), "attempts": tries,
                      "lease_owner": None, "lease_until": None, "last_error": r.detail}
            status, key = "retry", "retry"
        else:
            values = {"status": "failed", "attempts": tries, "lease_owner": None, "lease_until": None,
                      "last_error": r.detail}
            status, key = "failed", "failed"
        conn.execute(update(MESSAGES).where(MESSAGES.c.id == r.message_id, MESSAGES.c.lease_owner == owner)
                     .values(**values))
        conn.execute(HISTORY.insert(), {"message_id": r.message_id, "status": status, "at": now,
                                        "detail": r.detail})
        counts[key] += 1
    return counts
