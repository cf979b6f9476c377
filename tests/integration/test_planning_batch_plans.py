"""The look-ups every planning batch makes besides its own work find their few enrollments through a partial index
(migration 0028), not by reading every enrollment: a scheduled occurrence plans 400,000 businesses in 89 batches,
and each batch also looks for the "pas pour moi" answers whose message is due and for the control groups whose
diagnostic is due.

Each statement reading `enrollment` is explained as it runs (PostgreSQL with sequential scans discouraged: on a
table of a few rows the planner would rightly prefer one).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import event

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_batch
from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from tests.integration.test_journeys import add_business
from tests.utils.factories import campaign_spec
from tests.utils.query_plans import query_plan

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def test_each_batch_finds_due_answers_and_control_groups_through_their_partial_indexes(settings, engine):
    apply_campaign(engine, load_spec(campaign_spec(
        steps=[{"channel": "email", "delay": "0d", "template": "creation"}], holdout=10)), now=NOW)
    with engine.begin() as conn:
        for i in range(1, 41):
            add_business(conn, i, email=f"b{i}@exemple.fr")
    app = bootstrap(settings, clock=lambda: NOW)
    assert plan_batch(app)["enrolled"] == 40
    with engine.begin() as conn:  # the statistics autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) keep
        conn.exec_driver_sql("ANALYZE")
    seen: list[tuple[str, list[str]]] = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        flat = " ".join(statement.split())
        if not executemany and flat.startswith("SELECT") and "FROM enrollment" in flat:
            seen.append((flat, query_plan(conn, statement, parameters)))

    event.listen(engine, "before_cursor_execute", explain)
    try:
        plan_batch(app)  # nothing new: the batch's look-ups alone
    finally:
        event.remove(engine, "before_cursor_execute", explain)

    answers = [plan for sql, plan in seen if "enrollment.answer_due_at IS NOT NULL" in sql]
    controls = [plan for sql, plan in seen if "enrollment.arm =" in sql and "enrollment.enrolled_at <=" in sql]
    assert answers and controls, [sql for sql, _ in seen]
    assert all(any("ix_enrollment_answer_due" in step for step in plan) for plan in answers), answers
    assert all(any("ix_enrollment_holdout" in step for step in plan) for plan in controls), controls
