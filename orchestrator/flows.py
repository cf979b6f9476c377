"""Prefect flows: thin. They sequence batch tasks; the logic lives in plain functions of the other rooms.

`plan` turns new trigger events into enrollments and planned messages; `dispatch` sends what is due; the
intake flows (Sirene, BODACC, the regulatory calendar, the watched feeds) bring events in; `rollup` computes
the nightly metrics. Each task handles a whole batch (thousands of rows), never one row: Prefect's cost is
per task run (PREFECT-NOTES.md), and delivery state lives in our own tables.

Every flow reads its settings from the environment (`DECLIC_*`), so a worker on another machine only needs
the same environment. Parameters are strings or numbers: event-template parameters arrive as strings.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

from orchestrator.bootstrap import bootstrap
from orchestrator.dispatch import dispatch_all, worker_id
from orchestrator.planning import plan_batch


def _now(now: str | None) -> dt.datetime | None:
    # Flow parameters travel as strings (event-template parameters must be strings).
    return dt.datetime.fromisoformat(now) if now else None


def _run_label() -> str:
    # The flow run's readable name and short id, so a log line leads back to the run in the UI.
    run_id = flow_run.get_id()
    return f"{flow_run.get_name() or '-'} ({str(run_id)[:8] if run_id else 'local'})"


def _campaigns(counter: Counter) -> str:
    return ", ".join(f"campaign {cid}: {n}" for cid, n in sorted(counter.items())) or "no campaign"


# --- planning and dispatch ---


@task(name="plan-batch", cache_policy=NONE)
def plan_batch_task(now: str | None, limit: int | None) -> dict[str, int]:
    app = bootstrap()
    return dict(plan_batch(app, now=_now(now), limit=limit))


@task(name="dispatch-batches", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def dispatch_batches_task(now: str | None, limit: int | None, owner: str,
                          batches: int) -> tuple[dict[str, int], dict[int, int]]:
    # Several batches per task run: Prefect's cost is per task run, one SMTP session serves them all, and
    # `dispatch_all` renders the next batch while the current one is on the wire.
    app = bootstrap()
    by_campaign: Counter = Counter()
    try:
        counts = dispatch_all(app, now=_now(now), max_batches=batches, limit=limit, owner=owner,
                              by_campaign=by_campaign)
        return dict(counts), dict(by_campaign)
    finally:
        app.close()


@flow(name="plan", log_prints=False)
def plan_flow(now: str | None = None, limit: int | None = None, max_batches: int = 1000,
              trigger_event: str | None = None) -> dict[str, int]:
    """Plan every unplanned trigger event, batch by batch.

    `trigger_event` is the id of the Prefect event that started this run (event trigger), for the logs.
    """
    logger = get_run_logger()
    run = _run_label()
    total: Counter = Counter()
    for number in range(1, max_batches + 1):
        counts = plan_batch_task(now, limit)
        if not counts:
            break
        logger.info("flow run %s, plan batch %d (event %s): %s", run, number, trigger_event or "-", counts)
        total.update(counts)
    logger.info("flow run %s: planning done, %s", run, dict(total) or "nothing waiting")
    return dict(total)


@flow(name="dispatch", log_prints=False)
def dispatch_flow(now: str | None = None, limit: int | None = None, max_batches: int = 1000,
                  batches_per_task: int = 10) -> dict[str, int]:
    """Send every due message, batch by batch (several runs may work at once: claims are row locks)."""
    logger = get_run_logger()
    run = _run_label()
    owner = worker_id()
    total: Counter = Counter()
    for first in range(1, max_batches + 1, batches_per_task):
        wanted = min(batches_per_task, max_batches - first + 1)
        counts, by_campaign = dispatch_batches_task(now, limit, owner, wanted)
        if not counts:
            break
        logger.info("flow run %s, dispatch batches from %d by %s (%s): %s", run, first, owner,
                    _campaigns(Counter(by_campaign)), counts)
        total.update(counts)
    logger.info("flow run %s: dispatch done, %s", run, dict(total) or "nothing due")
    return dict(total)


# --- intake: the file ingesters of triggers/, the regulatory calendar, the watched feeds ---


def _intake(name: str) -> Callable[..., Any]:
    """The plain function `name` ("module:function") of another room, imported when the flow runs.

    Why lazily: a deployment must load even in a build where that room has not shipped its function yet;
    the run then fails with a sentence saying what is missing, not an ImportError at deploy time.
    """
    module, _, function = name.partition(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise RuntimeError(f"{name} is not available in this build ({exc})") from exc


def _report(result: Any) -> dict[str, Any]:
    # Ingest functions return an IngestReport (triggers/report.py) or a plain dict.
    return result.to_dict() if hasattr(result, "to_dict") else dict(result or {})


@task(name="ingest-file", cache_policy=NONE, retries=1, retry_delay_seconds=[30])
def ingest_task(function: str, path: str, today: str | None) -> dict[str, Any]:
    app = bootstrap()
    day = dt.date.fromisoformat(today) if today else app.clock().date()
    return _report(_intake(function)(app.engine, path, today=day))


@flow(name="ingest-sirene", log_prints=False)
def sirene_flow(path: str, kind: str = "stock", today: str | None = None) -> dict[str, Any]:
    """Ingest a Sirene StockEtablissement file (`kind` "stock", monthly) or a daily update file."""
    report = ingest_task("triggers.ingest:ingest_sirene", path, today)
    get_run_logger().info("flow run %s: Sirene %s %s: %s", _run_label(), kind, path, report)
    return report


@flow(name="ingest-bodacc", log_prints=False)
def bodacc_flow(path: str | None = None, today: str | None = None) -> dict[str, Any]:
    """Ingest a BODACC file, or, without a path, poll the built-in BODACC API feed."""
    if path is None:
        return watch_feeds_flow.fn(only="bodacc")
    report = ingest_task("triggers.ingest:ingest_bodacc", path, today)
    get_run_logger().info("flow run %s: BODACC %s: %s", _run_label(), path, report)
    return report


@task(name="deadline-events", cache_policy=NONE)
def deadlines_task(today: str | None) -> dict[str, Any]:
    app = bootstrap()
    day = dt.date.fromisoformat(today) if today else app.clock().date()
    run = _intake("triggers.ingest:emit_deadlines")(app.engine, today=day)
    return {"due": [f"{deadline.id} J-{offset}" for deadline, offset in run.due], **_report(run.report)}


@flow(name="deadlines", log_prints=False)
def deadlines_flow(today: str | None = None) -> dict[str, Any]:
    """Emit today's reminders of the regulatory calendar to the businesses they concern."""
    report = deadlines_task(today)
    get_run_logger().info("flow run %s: regulatory calendar on %s: %s", _run_label(), today or "today",
                          report)
    return report


@task(name="watch-feeds", cache_policy=NONE)
def watch_feeds_task(only: str | None, now: str | None) -> list[dict[str, Any]]:
    from orchestrator.feeds import watch_due_feeds

    app = bootstrap()
    return watch_due_feeds(app, now=_now(now), only=only)


@flow(name="watch-feeds", log_prints=False)
def watch_feeds_flow(only: str | None = None, now: str | None = None) -> dict[str, Any]:
    """Fetch every due feed (partner files, BODACC and Sirene APIs) and ingest what changed."""
    logger = get_run_logger()
    run = _run_label()
    outcomes = watch_feeds_task(only, now)
    for outcome in outcomes:
        logger.info("flow run %s, feed %s: %s", run, outcome["feed"], outcome["state"])
    return {"feeds": len(outcomes), "events": sum(o.get("events", 0) for o in outcomes),
            "failed": sum(o.get("failed", False) for o in outcomes)}


# --- metrics ---


@task(name="metrics-rollup", cache_policy=NONE)
def rollup_task(day: str | None) -> dict[str, Any]:
    app = bootstrap()
    when = dt.date.fromisoformat(day) if day else (app.clock() - dt.timedelta(days=1)).date()
    return _report(_intake("web.metrics:rollup")(app.engine, when))


@flow(name="metrics-rollup", log_prints=False)
def rollup_flow(day: str | None = None) -> dict[str, Any]:
    """Compute the nightly metrics rollups (yesterday by default)."""
    report = rollup_task(day)
    get_run_logger().info("flow run %s: metrics rollup for %s: %s", _run_label(), day or "yesterday", report)
    return report


def run_once(flow_fn, **params) -> dict[str, int]:
    """Run a flow in this process without the ~1 s heartbeat join at the end of sync flows."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow_fn(**params)
