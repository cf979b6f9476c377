"""Dispatch: claim due messages, check them again, render, hand them to their channel, record outcomes.

Plain functions (the Prefect flow in `orchestrator.flows` only sequences them), one call per batch.
`python -m orchestrator.dispatch [--now ISO]` runs `dispatch_all` alone, without Prefect (fault tests,
benchmarks, a cron line).
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
from store.outbox import (Fence, blocked_at_send_time, cancel, claim_due, pause_on_errors, record_results,
                          release_expired)
from web.tokens import links_for


def worker_id() -> str:
    """A lease owner name unique to this process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rfc_message_id(message_id: int, base_url: str) -> str:
    """A stable Message-ID: the same on every retry of one outbox row."""
    host = urlparse(base_url).hostname or "declic.local"
    return f"<declic.{message_id}@{host}>"


def outgoing(app: App, row, names: dict | None = None) -> OutgoingMessage:
    """Render one outbox row into a message ready to leave (links signed, no personal data in them).

    `names`, shared across a batch, caches which template file answers (channel, trigger, family, variant).
    """
    links = links_for(app.settings.resolved_secret, app.settings.base_url, row.id)
    context = dict(row.context, links=links)
    family = context["business"].get("family") or "autre"
    key = (row.channel, row.template, family, row.variant)
    if names is None or key not in names:
        name = app.templates.resolve(*key)
        if names is not None:
            names[key] = name
    else:
        name = names[key]
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
    A campaign whose permanent failures cross the threshold of the settings is paused on the way out
    (counted as `paused_campaigns`; the reason is on the campaign).
    """
    clock = app.clock if now is None else (lambda: now)
    now = clock().astimezone(dt.UTC)
    owner = owner or worker_id()
    settings = app.settings
    limit = limit or settings.dispatch_batch_size
    lease = dt.timedelta(seconds=settings.lease_seconds)
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
    names: dict = {}
    for row in rows:
        if row.id in blocked:
            continue
        try:
            by_channel[row.channel].append(outgoing(app, row, names))
        except Exception as exc:  # a template that cannot render is a permanent error of that message
            results.append(SendResult(row.id, Outcome.PERMANENT, f"rendu impossible : {exc}"))

    fence = Fence(app.engine, owner, lambda: clock().astimezone(dt.UTC))
    rfc_ids = {m.message_id: m.rfc_message_id for batch in by_channel.values() for m in batch}
    try:
        for channel_name, batch in by_channel.items():
            results += app.channel(channel_name).send(batch, on_handoff=lambda i: fence(i, rfc_ids[i]))
    finally:
        fence.close()
    retry_base = dt.timedelta(seconds=settings.retry_base_seconds)
    with app.engine.begin() as conn:
        counts.update(record_results(conn, results, owner, now, fence.handed_over, retry_base=retry_base))
        permanent = {r.message_id for r in results if r.outcome is Outcome.PERMANENT}
        failing = {row.campaign_id for row in rows if row.id in permanent} if counts["failed"] else set()
        if failing:
            paused = pause_on_errors(conn, sorted(failing), now, rate=settings.pause_error_rate,
                                     min_sample=settings.pause_min_sample,
                                     window=dt.timedelta(minutes=settings.pause_window_minutes))
            if paused:
                counts["paused_campaigns"] += len(paused)
    return counts


def dispatch_all(app: App, *, now: dt.datetime | None = None, max_batches: int = 10_000) -> Counter:
    """Dispatch batches until nothing is due."""
    total: Counter = Counter()
    owner = worker_id()
    for _ in range(max_batches):
        counts = dispatch_batch(app, now=now, owner=owner)
        if not counts:
            break
        total.update(counts)
    return total


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestrator.dispatch`: dispatch until nothing is due, print the counts as JSON.

    `--now ISO` starts the clock at that instant and lets it run (a fixed clock would never see a lease
    expire); `--until-empty SECONDS` keeps polling that long for retries that fall due.
    """
    import argparse
    import json
    import time

    from orchestrator.bootstrap import bootstrap

    parser = argparse.ArgumentParser(prog="python -m orchestrator.dispatch")
    parser.add_argument("--now", help="ISO datetime the clock starts from (default: the system clock)")
    parser.add_argument("--until-empty", type=float, default=0.0,
                        help="seconds to keep polling while messages wait for a retry")
    args = parser.parse_args(argv)
    clock = None
    if args.now:
        start, started = dt.datetime.fromisoformat(args.now), time.monotonic()
        clock = lambda: start + dt.timedelta(seconds=time.monotonic() - started)  # noqa: E731
    app = bootstrap(clock=clock)
    total: Counter = Counter()
    deadline = time.monotonic() + args.until_empty
    try:
        while True:
            total.update(dispatch_all(app))
            if time.monotonic() >= deadline or not _waiting(app):
                break
            time.sleep(0.2)
    finally:
        app.close()
    print(json.dumps(dict(total)), flush=True)
    return 0


def _waiting(app: App) -> bool:
    # Messages planned for a retry (or claimed by someone else) are still on their way.
    from sqlalchemy import func, select

    from store.outbox import MESSAGES

    with app.engine.connect() as conn:
        return bool(conn.execute(select(func.count()).select_from(MESSAGES)
                                 .where(MESSAGES.c.status.in_(("planned", "claimed")))).scalar())


if __name__ == "__main__":
    raise SystemExit(main())
