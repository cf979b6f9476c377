"""Dispatch: claim due messages, check them again, render, hand them to their channel, record outcomes.

Plain functions (the Prefect flow in `orchestrator.flows` only sequences them), one call per batch.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections import Counter, defaultdict
from urllib.parse import urlparse

from integrations.base import OutgoingMessage, Outcome, SendResult
from orchestrator.bootstrap import App
from store.outbox import blocked_at_send_time, cancel, claim_due, mark_handed_over, record_results, release_expired
from web.tokens import links_for


def worker_id() -> str:
    """A lease owner name unique to this process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rfc_message_id(message_id: int, base_url: str) -> str:
    """A stable Message-ID: the same on every retry of one outbox row."""
    host = urlparse(base_url).hostname or "declic.local"
    return f"<declic.{message_id}@{host}>"


def outgoing(app: App, row) -> OutgoingMessage:
    """Render one outbox row into a message ready to leave (links signed, no personal data in them)."""
    links = links_for(app.settings.resolved_secret, app.settings.base_url, row.id)
    context = dict(row.context, links=links)
    family = context["business"].get("family") or "autre"
    name = app.templates.resolve(row.channel, row.template, family, row.variant)
    rendered = app.templates.render(name, context)
    headers = {}
    if row.channel == "email":
        headers = {"List-Unsubscribe": f"<{links['unsubscribe']}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return OutgoingMessage(
        message_id=row.id, channel=row.channel, recipient=row.recipient or "", subject=rendered.subject,
        body=rendered.body, html_body=rendered.html, headers=headers,
        rfc_message_id=rfc_message_id(row.id, app.settings.base_url),
        meta={"campaign_id": row.campaign_id, "business_id": row.business_id, "template": name,
              "siret": context["business"].get("siret"), **(row.context.get("meta") or {})},
    )


def dispatch_batch(app: App, *, now: dt.datetime | None = None, limit: int | None = None,
                   owner: str | None = None, by_campaign: Counter | None = None) -> Counter:
    """Claim and send one batch of due messages; returns counts by outcome (empty when nothing was due).

    `by_campaign`, when given, receives the number of claimed messages per campaign id (for the logs).
    """
    now = (now or app.clock()).astimezone(dt.UTC)
    owner = owner or worker_id()
    limit = limit or app.settings.dispatch_batch_size
    lease = dt.timedelta(seconds=app.settings.lease_seconds)
    with app.engine.begin() as conn:
        release_expired(conn, now)
        rows = claim_due(conn, now, limit, owner, lease)
    counts: Counter = Counter()
    if not rows:
        return counts
    if by_campaign is not None:
        by_campaign.update(row.campaign_id for row in rows)
    with app.engine.begin() as conn:
        blocked = blocked_at_send_time(conn, rows)
        cancel(conn, blocked, owner, now)
    counts.update(f"cancelled_{reason}" for reason in blocked.values())

    by_channel: dict[str, list[OutgoingMessage]] = defaultdict(list)
    results: list[SendResult] = []
    for row in rows:
        if row.id in blocked:
            continue
        try:
            by_channel[row.channel].append(outgoing(app, row))
        except Exception as exc:  # a template that cannot render is a permanent error of that message
            results.append(SendResult(row.id, Outcome.PERMANENT, f"rendu impossible: {exc}"))

    handed_over: set[int] = set()
    rfc_ids = {m.message_id: m.rfc_message_id for batch in by_channel.values() for m in batch}

    def on_handoff(message_id: int) -> bool:
        ok = mark_handed_over(app.engine, message_id, owner, rfc_ids[message_id])
        if ok:
            handed_over.add(message_id)
        return ok

    for channel_name, batch in by_channel.items():
        results += app.channel(channel_name).send(batch, on_handoff=on_handoff)
    with app.engine.begin() as conn:
        counts.update(record_results(conn, results, owner, now, handed_over))
    return counts


def dispatch_all(app: App, *, now: dt.datetime | None = None, max_batches: int = 10_000) -> Counter:
    """Dispatch batches until nothing is due."""
    total: Counter = Counter()
    for _ in range(max_batches):
        counts = dispatch_batch(app, now=now)
        if not counts:
            break
        total.update(counts)
    return total
