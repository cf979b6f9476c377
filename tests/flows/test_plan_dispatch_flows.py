"""The `plan` and `dispatch` flows under Prefect's test harness (the logic is tested without it elsewhere)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.events import store_events
from store.models import Message
from tests.utils.factories import campaign_spec, creation_item
from triggers.partner_api import validate_item

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
# Events happen before the test's clock, whatever the real date (a fixed NOW and a real 'today' drift apart).
EVENT_DAY = NOW.date() - dt.timedelta(days=3)


def test_plan_then_dispatch_flows_deliver(prefect_harness, env_settings, engine, smtp_sink):
    from orchestrator.prefect.flows import dispatch_flow, plan_flow, run_once

    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    events = [validate_item(creation_item(f"f-{i}", email=f"p{i}@exemple.fr", occurred_on=EVENT_DAY),
                            "partner:0", "bge", today=dt.date.today()) for i in range(3)]
    store_events(engine, events, now=NOW)

    planned = run_once(plan_flow, now=NOW.isoformat())
    assert planned["events"] == 3 and planned["messages"] == 3
    # The trade's send window may be later that day: dispatch on the clock of the last planned slot.
    with engine.connect() as conn:
        due = conn.execute(select(func.max(Message.__table__.c.due_at))).scalar()
    sent = run_once(dispatch_flow, now=due.isoformat())
    assert sent["sent"] == 3
    assert smtp_sink.received == 3 and not smtp_sink.duplicates()
    # Nothing left: a second run is a no-op.
    assert run_once(dispatch_flow, now=due.isoformat()) == {}
