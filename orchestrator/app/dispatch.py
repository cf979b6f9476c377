"""Dispatch: claim due messages, check them again, render, hand them to their channel, record outcomes.

Plain functions (the Prefect flow in `orchestrator.prefect.flows` only sequences them), one call per batch.
`python -m orchestrator.app.dispatch [--now ISO]` runs `dispatch_all` alone, without Prefect (fault tests,
benchmarks, a cron line).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlparse

from integrations.base import OutgoingMessage
from orchestrator.app.bootstrap import App
from orchestrator.core.links import links_for
from orchestrator.core.outcomes import Outcome, SendResult
from orchestrator.core.run_reports import tally_sends
from store.outbox import (
    Fence,
    blocked_at_send_time,
    cancel,
    claim_due,
    claim_operator_notices,
    pause_on_errors,
    record_operator_results,
    record_results,
    release_expired,
)
from store.privacy import without_consent


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
    links = links_for(app.settings.resolved_secret, app.settings.base_url, row.id, now=app.clock(), lazy_short=True)
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


@dataclass
class Prepared:
    """One claimed batch, checked again and rendered, waiting to be handed to its channels."""

    owner: str
    now: dt.datetime
    clock: Callable[[], dt.datetime]
    rows: list
    counts: Counter
    by_channel: dict[str, list[OutgoingMessage]] = field(default_factory=dict)
    results: list[SendResult] = field(default_factory=list)
    blocked: dict[int, str] = field(default_factory=dict)  # stopped before rendering, with the reason


def prepare_batch(app: App, *, now: dt.datetime | None = None, limit: int | None = None,
                  owner: str | None = None, by_campaign: Counter | None = None) -> Prepared | None:
    """Claim a batch, cancel what must not leave any more, render the rest; None when nothing is due."""
    clock = app.clock if now is None else (lambda: now)
    now = clock().astimezone(dt.UTC)
    owner = owner or worker_id()
    limit = limit or app.settings.dispatch_batch_size
    lease = dt.timedelta(seconds=app.settings.lease_seconds)
    with app.engine.begin() as conn:
        release_expired(conn, now)
        rows = claim_due(conn, now, limit, owner, lease)
    if not rows:
        return None
    if by_campaign is not None:
        by_campaign.update(row.campaign_id for row in rows)
    with app.engine.begin() as conn:
        blocked = blocked_at_send_time(conn, rows)
        # A call or SMS consent is specific to the owner it was given to (issue 15).
        blocked.update(without_consent(conn, [r for r in rows if r.id not in blocked]))
        cancel(conn, blocked, owner, now)
    prepared = Prepared(owner, now, clock, rows, Counter(f"cancelled_{reason}" for reason in blocked.values()),
                        blocked=blocked)
    names: dict = {}
    for row in rows:
        if row.id in blocked:
            continue
        try:
            prepared.by_channel.setdefault(row.channel, []).append(outgoing(app, row, names))
        except Exception as exc:  # a template that cannot render is a permanent error of that message
            prepared.results.append(SendResult(row.id, Outcome.PERMANENT, f"rendu impossible : {exc}"))
    return prepared


def deliver_batch(app: App, prepared: Prepared, by_outcome: Counter | None = None) -> Counter:
    """Hand a prepared batch to its channels behind the fence, record every answer, pause failing campaigns.

    `by_outcome`, when given, receives counts by (campaign id, channel, outcome) for the run's report.
    """
    settings, owner, now, clock = app.settings, prepared.owner, prepared.now, prepared.clock
    counts, results = prepared.counts, list(prepared.results)
    rfc_ids = {m.message_id: m.rfc_message_id for batch in prepared.by_channel.values() for m in batch}
    # Checked again right before leaving: the batch may have waited while the previous one was sent, and an
    # opt-out, a closure or a campaign paused in the meantime must still stop it.
    with app.engine.begin() as conn:
        late = blocked_at_send_time(conn, [row for row in prepared.rows if row.id in rfc_ids])
        cancel(conn, late, owner, now)
    if late:
        counts.update(f"cancelled_{reason}" for reason in late.values())
        prepared.by_channel = {name: kept for name, batch in prepared.by_channel.items()
                               if (kept := [m for m in batch if m.message_id not in late])}
    fence = Fence(app.engine, owner, lambda: clock().astimezone(dt.UTC))
    try:
        for channel_name, batch in prepared.by_channel.items():
            results += app.channel(channel_name).send(batch, on_handoff=lambda i: fence(i, rfc_ids[i]),
                                                      on_answer=fence.answered)
    finally:
        fence.close()
    retry_base = dt.timedelta(seconds=settings.retry_base_seconds)
    with app.engine.begin() as conn:
        counts.update(record_results(conn, results, owner, now, fence.handed_over, retry_base=retry_base,
                                     settled=fence.settled))
        permanent = {r.message_id for r in results if r.outcome is Outcome.PERMANENT}
        failing = {row.campaign_id for row in prepared.rows if row.id in permanent}
        if failing:
            paused = pause_on_errors(conn, sorted(failing), now, rate=settings.pause_error_rate,
                                     min_sample=settings.pause_min_sample,
                                     window=dt.timedelta(minutes=settings.pause_window_minutes), zone=app.zone)
            if paused:
                counts["paused_campaigns"] += len(paused)
    if by_outcome is not None:
        tally_sends(by_outcome, prepared.rows, results, {**prepared.blocked, **late})
    return counts


def dispatch_batch(app: App, *, now: dt.datetime | None = None, limit: int | None = None,
                   owner: str | None = None, by_campaign: Counter | None = None) -> Counter:
    """Claim and send one batch of due messages; returns counts by outcome (empty when nothing was due).

    `by_campaign`, when given, receives the number of claimed messages per campaign id (for the logs).
    A campaign whose permanent failures cross the threshold of the settings is paused on the way out
    (counted as `paused_campaigns`; the reason is on the campaign).
    """
    prepared = prepare_batch(app, now=now, limit=limit, owner=owner, by_campaign=by_campaign)
    return deliver_batch(app, prepared) if prepared is not None else Counter()


def dispatch_operator_notices(app: App, *, now: dt.datetime | None = None, owner: str | None = None) -> Counter:
    """Send the operators' alert e-mails due in their outbox (queued by orchestrator/app/alerts.py) over the
    e-mail channel; returns counts by outcome (sent, retry, failed). A handful of rows, one claim when none."""
    now = (now or app.clock()).astimezone(dt.UTC)
    owner = owner or worker_id()
    with app.engine.begin() as conn:
        rows = claim_operator_notices(conn, now, owner, dt.timedelta(seconds=app.settings.lease_seconds))
    if not rows:
        return Counter()
    host = urlparse(app.settings.base_url).hostname or "declic.local"
    batch = [OutgoingMessage(message_id=row.id, channel="email", recipient=row.recipient, subject=row.subject,
                             body=row.body, rfc_message_id=f"<declic.alerte.{row.id}@{host}>",
                             meta={"operator_notice": row.purpose}) for row in rows]
    results = app.channel("email").send(batch)
    with app.engine.begin() as conn:
        counts = record_operator_results(conn, results, owner, now,
                                         dt.timedelta(seconds=app.settings.retry_base_seconds))
    return Counter({outcome: n for outcome, n in counts.items() if n})


def dispatch_all(app: App, *, now: dt.datetime | None = None, max_batches: int = 10_000,
                 limit: int | None = None, owner: str | None = None,
                 by_campaign: Counter | None = None, by_outcome: Counter | None = None) -> Counter:
    """Dispatch batches until nothing is due (at most `max_batches` of `limit` messages).

    The next batch is claimed and rendered in a helper thread while the current one is on the wire:
    rendering is our CPU, the SMTP exchange mostly the server's, so the two overlap instead of adding up.
    `owner` and `by_campaign` are as for `dispatch_batch` (a flow passes its own, for its logs);
    `by_outcome` as for `deliver_batch`.
    """
    total: Counter = Counter()
    owner = owner or worker_id()
    # The operators' alerts first (a few rows): their own counts, not the campaigns' figures of the run.
    notices = dispatch_operator_notices(app, now=now, owner=owner)
    if notices:
        logging.getLogger("declic.alerts").info("alertes aux opérateurs : envoyées %d, à réessayer %d, en échec %d",
                                                notices["sent"], notices["retry"], notices["failed"])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="declic-prepare") as helper:
        prepared = prepare_batch(app, now=now, limit=limit, owner=owner, by_campaign=by_campaign)
        for number in range(1, max_batches + 1):
            if prepared is None:
                break
            # No look-ahead on the last allowed batch: nothing is claimed that this call will not send.
            upcoming = None
            if number < max_batches:
                upcoming = helper.submit(prepare_batch, app, now=now, limit=limit, owner=owner,
                                         by_campaign=by_campaign)
            try:
                total.update(deliver_batch(app, prepared, by_outcome))
            finally:
                prepared = upcoming.result() if upcoming is not None else None
    return total


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestrator.app.dispatch`: dispatch until nothing is due, print the counts as JSON.

    `--now ISO` starts the clock at that instant and lets it run (a fixed clock would never see a lease
    expire); `--until-empty SECONDS` keeps polling that long for retries that fall due.
    """
    import argparse
    import json
    import time

    from orchestrator.app.bootstrap import bootstrap

    parser = argparse.ArgumentParser(prog="python -m orchestrator.app.dispatch")
    parser.add_argument("--now", help="ISO datetime the clock starts from (default: the system clock)")
    parser.add_argument("--until-empty", type=float, default=0.0,
                        help="seconds to keep polling while messages wait for a retry")
    parser.add_argument("--wait-for", metavar="FILE",
                        help='print "ready" once set up, then wait for FILE to exist before dispatching '
                             "(tests start several dispatchers at the same instant)")
    args = parser.parse_args(argv)
    clock = None
    if args.now:
        start, origin = dt.datetime.fromisoformat(args.now), time.monotonic()
        clock = lambda: start + dt.timedelta(seconds=time.monotonic() - origin)  # noqa: E731
    app = bootstrap(clock=clock)
    app.channel("email")  # imports and connections set up before the clock of the figures starts
    if args.wait_for:
        from pathlib import Path

        print("ready", flush=True)
        while not Path(args.wait_for).exists():
            time.sleep(0.01)
    total: Counter = Counter()
    began, cpu = time.time(), time.process_time()
    deadline = time.monotonic() + args.until_empty
    try:
        while True:
            total.update(dispatch_all(app))
            if time.monotonic() >= deadline or not _waiting(app):
                break
            time.sleep(0.2)
    finally:
        app.close()
    # The counts, then when the work started and ended (epoch seconds) and the CPU it cost (benchmarks).
    print(json.dumps({**total, "started": began, "ended": time.time(), "cpu": time.process_time() - cpu}),
          flush=True)
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
