"""Prefect flows: thin. They sequence batch tasks; the logic lives in plain functions.

`plan` turns new trigger events into enrollments and planned messages; `dispatch` sends what is due.
Each task handles a whole batch (thousands of rows), never one row: Prefect's cost is per task run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from orchestrator.bootstrap import bootstrap
from orchestrator.dispatch import dispatch_batch, worker_id
from orchestrator.planning import plan_batch


def _now(now: str | None) -> dt.datetime | None:
    # Flow parameters travel as strings (event-template parameters must be strings).
    return dt.datetime.fromisoformat(now) if now else None


@task(name="plan-batch", cache_policy=NONE)
def plan_batch_task(now: str | None, limit: int | None) -> dict[str, int]:
    app = bootstrap()
    return dict(plan_batch(app, now=_now(now), limit=limit))


@task(name="dispatch-batch", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def dispatch_batch_task(now: str | None, limit: int | None, owner: str) -> dict[str, int]:
    app = bootstrap()
    try:
        return dict(dispatch_batch(app, now=_now(now), limit=limit, owner=owner))
    finally:
        app.close()


@flow(name="plan", log_prints=False)
def plan_flow(now: str | None = None, limit: int | None = None, max_batches: int = 1000,
              trigger_batch: str | None = None) -> dict[str, int]:
    """Plan every unplanned trigger event, batch by batch."""
    logger = get_run_logger()
    total: Counter = Counter()
    for number in range(1, max_batches + 1):
        counts = plan_batch_task(now, limit)
        if not counts:
            break
        logger.info("plan batch %d (trigger batch %s): %s", number, trigger_batch or "-", counts)
        total.update(counts)
    return dict(total)


@flow(name="dispatch", log_prints=False)
def dispatch_flow(now: str | None = None, limit: int | None = None, max_batches: int = 1000) -> dict[str, int]:
    """Send every due message, batch by batch."""
    logger = get_run_logger()
    owner = worker_id()
    total: Counter = Counter()
    for number in range(1, max_batches + 1):
        counts = dispatch_batch_task(now, limit, owner)
        if not counts:
            break
        logger.info("dispatch batch %d by %s: %s", number, owner, counts)
        total.update(counts)
    return dict(total)


def run_once(flow_fn, **params) -> dict[str, int]:
    """Run a flow in this process without the ~1 s heartbeat join at the end of sync flows."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow_fn(**params)
