"""Dispatch: claim due messages, check them again, render, hand them to their channel, record outcomes.

Plain functions (the Prefect flow in `orchestrator.prefect.flows` only sequences them), one call per batch.
`python -m orchestrator.app.dispatch [--now ISO]` runs `dispatch_all` alone, without Prefect (fault tests,
benchmarks, a cron line).

The store operations dispatch needs are the small `Outbox` protocol below: `StoreOutbox` does them on the store
(store.outbox and its neighbours), a recording fake in tests/unit/test_dispatch_outbox.py. Channels never see
the store: what they read comes on the messages (each campaign's voice, a call's or a relay's facts), what they
must keep comes back in their results (an address refused for good, a call task) and is written here with
the outcome.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine

from integrations.base import OutgoingMessage
from integrations.relay import Intermediary
from orchestrator.app.bootstrap import App, bootstrap
from orchestrator.app.calls import call_facts, queue_tasks
from orchestrator.core.links import links_for
from orchestrator.core.outcomes import Outcome, SendResult
from orchestrator.core.run_reports import tally_sends
from store.dispatching import campaign_voices, still_on_their_way
from store.intermediaries import intermediaries_by_email
from store.outbox import (
    Fence,
    blocked_at_send_time,
    cancel,
    claim_due,
    claim_notices,
    pause_on_errors,
    record_notice_results,
    record_results,
    release_expired,
)
from store.privacy import without_consent
from store.suppressions import suppress


class HandoffFence(Protocol):
    """The handoff fence of one batch (`store.outbox.Fence`): records each message as handed over while the
    dispatcher holds its lease, and the peer's early answers."""

    handed_over: set[int]
    settled: set[int]

    def __call__(self, message_id: int, rfc_message_id: str) -> bool: ...

    def answered(self, result: SendResult) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class PausePolicy:
    """When a campaign's permanent failures pause it (from the settings), and the zone its reason is told in."""

    rate: float
    min_sample: int
    window: dt.timedelta
    zone: ZoneInfo


@runtime_checkable
class Outbox(Protocol):
    """The store operations dispatch needs, each its own unit of work."""

    def claim(self, now: dt.datetime, limit: int, owner: str, lease: dt.timedelta) -> list[Any]:
        """Give back the leases that ran out, then claim up to `limit` due messages for `owner` (their rows)."""
        ...

    def stop(self, rows: Sequence[Any], owner: str, now: dt.datetime, *, consent: bool) -> dict[int, str]:
        """Stop the claimed messages that must not leave any more (opt-out, closure, campaign paused or ended;
        with `consent`, also a call or SMS without a consent its campaign's owner holds); why, by message id."""
        ...

    def voices(self, campaign_ids: Collection[int]) -> dict[int, dict[str, Any]]:
        """Each campaign's words about who speaks ({"sender": ..., "owner": ...}), by id."""
        ...

    def facts(self, by_channel: Mapping[str, Sequence[OutgoingMessage]]) -> dict[int, Any]:
        """What the store knows that a channel needs of each message (a call's, a relay's), by message id."""
        ...

    def fence(self, owner: str, clock: Callable[[], dt.datetime]) -> HandoffFence:
        """The handoff fence of one batch."""
        ...

    def record(self, results: Sequence[SendResult], owner: str, now: dt.datetime, fence: HandoffFence, *,
               refused: Collection[str], retry_base: dt.timedelta, failing: Collection[int],
               pause: PausePolicy) -> tuple[dict[str, int], dict[int, str]]:
        """In one transaction: queue the call tasks the results carry, opt out the e-mail addresses `refused`
        for good, record every answer (retries with backoff from `retry_base`), pause the `failing` campaigns
        past the policy's threshold. Returns counts by outcome, and why each paused campaign was paused."""
        ...


class StoreOutbox:
    """The `Outbox` on the store, each operation its own transaction on `engine`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def claim(self, now: dt.datetime, limit: int, owner: str, lease: dt.timedelta) -> list[Any]:
        with self.engine.begin() as conn:
            release_expired(conn, now)
            return claim_due(conn, now, limit, owner, lease)

    def stop(self, rows: Sequence[Any], owner: str, now: dt.datetime, *, consent: bool) -> dict[int, str]:
        with self.engine.begin() as conn:
            blocked = blocked_at_send_time(conn, rows)
            if consent:  # a call or SMS consent is specific to the owner it was given to (issue 15)
                blocked.update(without_consent(conn, [r for r in rows if r.id not in blocked]))
            cancel(conn, blocked, owner, now)
        return blocked

    def voices(self, campaign_ids: Collection[int]) -> dict[int, dict[str, Any]]:
        with self.engine.connect() as conn:
            return campaign_voices(conn, campaign_ids)

    def facts(self, by_channel: Mapping[str, Sequence[OutgoingMessage]]) -> dict[int, Any]:
        # Only two channels need facts: calls (consents, past calls, open tasks) and relays (who is greeted).
        calls, relays = by_channel.get("call", ()), by_channel.get("relay", ())
        if not calls and not relays:
            return {}
        with self.engine.connect() as conn:
            facts: dict[int, Any] = dict(call_facts(conn, calls)) if calls else {}
            known = intermediaries_by_email(conn, [m.recipient.strip() for m in relays])
        for message in relays:
            person = known.get(message.recipient.strip().lower())
            if person is not None:
                facts[message.message_id] = Intermediary(person.name, person.kind or "")
        return facts

    def fence(self, owner: str, clock: Callable[[], dt.datetime]) -> HandoffFence:
        return Fence(self.engine, owner, clock)

    def record(self, results: Sequence[SendResult], owner: str, now: dt.datetime, fence: HandoffFence, *,
               refused: Collection[str], retry_base: dt.timedelta, failing: Collection[int],
               pause: PausePolicy) -> tuple[dict[str, int], dict[int, str]]:
        with self.engine.begin() as conn:
            results = queue_tasks(conn, results)
            for address in refused:  # refused in the SMTP dialogue: an opt-out, as after a bounce report
                suppress(conn, "email", address, "bounce", "smtp", now=now)
            counts = record_results(conn, results, owner, now, fence.handed_over, retry_base=retry_base,
                                    settled=fence.settled)
            paused = {}
            if failing:
                paused = pause_on_errors(conn, sorted(failing), now, rate=pause.rate, min_sample=pause.min_sample,
                                         window=pause.window, zone=pause.zone)
        return counts, paused


def worker_id() -> str:
    """A lease owner name unique to this process and run."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def rfc_message_id(message_id: int, base_url: str) -> str:
    """A stable Message-ID: the same on every retry of one outbox row."""
    return f"<declic.{message_id}@{_host(base_url)}>"


@lru_cache(maxsize=8)
def _host(base_url: str) -> str:
    return urlparse(base_url).hostname or "declic.local"


def outgoing(app: App, row, names: dict | None = None, campaign: dict[str, Any] | None = None,
             now: dt.datetime | None = None) -> OutgoingMessage:
    """Render one outbox row into a message ready to leave (links signed, no personal data in them).

    `names`, shared across a batch, caches which template file answers (channel, trigger, family, variant);
    `campaign` is the campaign's voice (`Outbox.voices`).
    """
    links = links_for(app.settings.resolved_secret, app.settings.base_url, row.id, now=now or app.clock(),
                      lazy_short=True)
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
        campaign=campaign or {},
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
                  owner: str | None = None, by_campaign: Counter | None = None,
                  outbox: Outbox | None = None) -> Prepared | None:
    """Claim a batch, cancel what must not leave any more, render the rest with what the channels need from
    the store; None when nothing is due. `outbox`: the store's by default (`StoreOutbox`)."""
    outbox = outbox or StoreOutbox(app.engine)
    clock = app.clock if now is None else (lambda: now)
    now = clock().astimezone(dt.UTC)
    owner = owner or worker_id()
    limit = limit or app.settings.dispatch_batch_size
    lease = dt.timedelta(seconds=app.settings.lease_seconds)
    rows = outbox.claim(now, limit, owner, lease)
    if not rows:
        return None
    if by_campaign is not None:
        by_campaign.update(row.campaign_id for row in rows)
    blocked = outbox.stop(rows, owner, now, consent=True)
    prepared = Prepared(owner, now, clock, rows, Counter(f"cancelled_{reason}" for reason in blocked.values()),
                        blocked=blocked)
    voices = outbox.voices({row.campaign_id for row in rows if row.id not in blocked})
    names: dict = {}
    for row in rows:
        if row.id in blocked:
            continue
        try:
            message = outgoing(app, row, names, voices.get(row.campaign_id), now)
        except Exception as exc:  # a template that cannot render is a permanent error of that message
            prepared.results.append(SendResult(row.id, Outcome.PERMANENT, f"rendu impossible : {exc}"))
        else:
            prepared.by_channel.setdefault(row.channel, []).append(message)
    facts = outbox.facts(prepared.by_channel)
    if facts:
        prepared.by_channel = {name: [replace(m, facts=facts[m.message_id]) if m.message_id in facts else m
                                      for m in batch] for name, batch in prepared.by_channel.items()}
    return prepared


def deliver_batch(app: App, prepared: Prepared, by_outcome: Counter | None = None,
                  outbox: Outbox | None = None) -> Counter:
    """Hand a prepared batch to its channels behind the fence, record every answer, pause failing campaigns.

    `by_outcome`, when given, receives counts by (campaign id, channel, outcome) for the run's report;
    `outbox`: the store's by default (`StoreOutbox`).
    """
    outbox = outbox or StoreOutbox(app.engine)
    settings, owner, now, clock = app.settings, prepared.owner, prepared.now, prepared.clock
    counts, results = prepared.counts, list(prepared.results)
    rfc_ids = {m.message_id: m.rfc_message_id for batch in prepared.by_channel.values() for m in batch}
    # Checked again right before leaving: the batch may have waited while the previous one was sent, and an
    # opt-out, a closure or a campaign paused in the meantime must still stop it.
    late = outbox.stop([row for row in prepared.rows if row.id in rfc_ids], owner, now, consent=False)
    if late:
        counts.update(f"cancelled_{reason}" for reason in late.values())
        prepared.by_channel = {name: kept for name, batch in prepared.by_channel.items()
                               if (kept := [m for m in batch if m.message_id not in late])}
    fence = outbox.fence(owner, lambda: clock().astimezone(dt.UTC))
    try:
        for channel_name, batch in prepared.by_channel.items():
            results += app.channel(channel_name).send(batch, on_handoff=lambda i: fence(i, rfc_ids[i]),
                                                      on_answer=fence.answered)
    finally:
        fence.close()
    permanent = {r.message_id for r in results if r.outcome is Outcome.PERMANENT}
    failing = {row.campaign_id for row in prepared.rows if row.id in permanent}
    recipients = {m.message_id: m.recipient for batch in prepared.by_channel.values() for m in batch}
    refused = sorted({recipients[r.message_id] for r in results if r.address_refused and r.message_id in recipients})
    pause = PausePolicy(settings.pause_error_rate, settings.pause_min_sample,
                        dt.timedelta(minutes=settings.pause_window_minutes), app.zone)
    recorded, paused = outbox.record(results, owner, now, fence, refused=refused, failing=failing, pause=pause,
                                     retry_base=dt.timedelta(seconds=settings.retry_base_seconds))
    counts.update(recorded)
    if paused:
        counts["paused_campaigns"] += len(paused)
    if by_outcome is not None:
        tally_sends(by_outcome, prepared.rows, results, {**prepared.blocked, **late})
    return counts


def dispatch_batch(app: App, *, now: dt.datetime | None = None, limit: int | None = None,
                   owner: str | None = None, by_campaign: Counter | None = None,
                   outbox: Outbox | None = None) -> Counter:
    """Claim and send one batch of due messages; returns counts by outcome (empty when nothing was due).

    `by_campaign`, when given, receives the number of claimed messages per campaign id (for the logs).
    A campaign whose permanent failures cross the threshold of the settings is paused on the way out
    (counted as `paused_campaigns`; the reason is on the campaign). `outbox`: the store's by default.
    """
    outbox = outbox or StoreOutbox(app.engine)
    prepared = prepare_batch(app, now=now, limit=limit, owner=owner, by_campaign=by_campaign, outbox=outbox)
    return deliver_batch(app, prepared, outbox=outbox) if prepared is not None else Counter()


# The word of a notice's Message-ID by kind (an operator's alert otherwise).
NOTICE_IDS = {"callback_request": "rappel"}


def dispatch_notices(app: App, *, now: dt.datetime | None = None, owner: str | None = None) -> Counter:
    """Send the notices due in their outbox over the e-mail channel: the operators' alerts (queued by
    orchestrator/app/alerts.py) and the ambassadors' callbacks (orchestrator/app/callbacks.py); returns counts by
    outcome (sent, retry, failed). A handful of rows, one claim when none."""
    now = (now or app.clock()).astimezone(dt.UTC)
    owner = owner or worker_id()
    with app.engine.begin() as conn:
        rows = claim_notices(conn, now, owner, dt.timedelta(seconds=app.settings.lease_seconds))
    if not rows:
        return Counter()
    host = urlparse(app.settings.base_url).hostname or "declic.local"
    batch = [OutgoingMessage(message_id=row.id, channel="email", recipient=row.recipient, subject=row.subject,
                             body=row.body, meta={"notice": row.kind},
                             rfc_message_id=f"<declic.{NOTICE_IDS.get(row.kind, 'alerte')}.{row.id}@{host}>")
             for row in rows]
    results = app.channel("email").send(batch)
    with app.engine.begin() as conn:
        counts = record_notice_results(conn, results, owner, now,
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
    outbox = StoreOutbox(app.engine)
    # The notices first (operators' alerts, ambassadors' callbacks: a few rows): their own counts, not the
    # campaigns' figures of the run.
    notices = dispatch_notices(app, now=now, owner=owner)
    if notices:
        logging.getLogger("declic.alerts").info(
            "avis aux opérateurs et ambassadeurs : envoyés %d, à réessayer %d, en échec %d",
            notices["sent"], notices["retry"], notices["failed"])
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="declic-prepare") as helper:
        prepared = prepare_batch(app, now=now, limit=limit, owner=owner, by_campaign=by_campaign, outbox=outbox)
        for number in range(1, max_batches + 1):
            if prepared is None:
                break
            # No look-ahead on the last allowed batch: nothing is claimed that this call will not send.
            upcoming = None
            if number < max_batches:
                upcoming = helper.submit(prepare_batch, app, now=now, limit=limit, owner=owner,
                                         by_campaign=by_campaign, outbox=outbox)
            try:
                total.update(deliver_batch(app, prepared, by_outcome, outbox))
            finally:
                prepared = upcoming.result() if upcoming is not None else None
    return total


def main(argv: list[str] | None = None) -> int:
    """`python -m orchestrator.app.dispatch`: dispatch until nothing is due, print the counts as JSON.

    `--now ISO` starts the clock at that instant and lets it run (a fixed clock would never see a lease
    expire); `--until-empty SECONDS` keeps polling that long for retries that fall due.
    """
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
    app.templates.warm("email")
    # What start-up made (modules, compiled templates, the store's metadata) lives as long as the process: out of the
    # cyclic collector's reach, whose full passes over it cost about 0.02 ms per e-mail sent (measured).
    gc.collect()
    gc.freeze()
    if args.wait_for:
        print("ready", flush=True)
        while not Path(args.wait_for).exists():
            time.sleep(0.01)
    total: Counter = Counter()
    # Epoch seconds on purpose (a metric, not the App's clock): the bench lines up the figures of several worker
    # processes, which monotonic clocks cannot.
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
    with app.engine.connect() as conn:
        return still_on_their_way(conn)


if __name__ == "__main__":
    raise SystemExit(main())
