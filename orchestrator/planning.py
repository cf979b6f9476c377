"""Planning: gather new trigger events in bulk, call the pure planner, store its plan.

Plain functions; the Prefect flow in `orchestrator.flows` only sequences them, one call per batch.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from orchestrator.bootstrap import App
from orchestrator.planner import plan
from store.planning import active_campaigns, apply_plan, existing_enrollments, pending_candidates, suppressed_for


def plan_batch(app: App, *, now: dt.datetime | None = None, limit: int | None = None) -> Counter:
    """Plan one batch of unplanned events; returns counts (events, enrolled, messages, skipped, skip reasons)."""
    now = now or app.clock()
    limit = limit or app.settings.plan_batch_size
    with app.engine.begin() as conn:
        event_ids, candidates = pending_candidates(conn, limit)
        if not event_ids:
            return Counter()
        decided = plan(candidates, active_campaigns(conn), now=now,
                       enrolled=existing_enrollments(conn, candidates), suppressed=suppressed_for(conn, candidates))
        counts = Counter(apply_plan(conn, decided, event_ids))
    counts.update(f"skipped_{s.reason}" for s in decided.skipped)
    return counts


def plan_all(app: App, *, now: dt.datetime | None = None, max_batches: int = 10_000) -> Counter:
    """Plan until no event is waiting."""
    total: Counter = Counter()
    for _ in range(max_batches):
        counts = plan_batch(app, now=now)
        if not counts:
            break
        total.update(counts)
    return total
