"""`declic status`: outbox figures per channel, feeds in plain words, flow runs or a plain note."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from typer.testing import CliRunner

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_all
from orchestrator.cli.status import collect, last_runs
from orchestrator.core.campaign_spec import load_spec
from store.admin import add_partner, apply_campaign
from store.events import store_events
from store.feeds import add_feed
from store.models import Message
from tests.utils.factories import campaign_spec, creation_item
from triggers.partner_api import validate_item

NOW = dt.datetime(2026, 12, 1, 16, 45, tzinfo=dt.UTC)
# Events happen before the test's clock, whatever the real date (a fixed NOW and a real 'today' drift apart).
EVENT_DAY = NOW.date() - dt.timedelta(days=3)


def test_status_counts_queued_due_and_failed_per_channel(env_settings, engine, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    add_partner(engine, "bge", ["creation"], now=NOW)
    store_events(
        engine,
        [
            validate_item(creation_item(f"s{i}", email=f"p{i}@exemple.fr", occurred_on=EVENT_DAY), "partner:1", "bge",
                          today=dt.date.today())
            for i in range(5)
        ], now=NOW,
    )
    plan_all(bootstrap(env_settings, clock=lambda: NOW))
    m = Message.__table__
    with engine.begin() as conn:
        ids = sorted(conn.execute(m.select().with_only_columns(m.c.id)).scalars())
        conn.execute(
            update(m).where(m.c.id == ids[0]).values(status="failed", last_error="boîte inexistante")
        )
        conn.execute(update(m).where(m.c.id == ids[1]).values(due_at=NOW + dt.timedelta(days=30)))
        conn.execute(update(m).where(m.c.id.in_(ids[2:])).values(due_at=NOW - dt.timedelta(minutes=1)))
    add_feed(engine, name="bodacc", format="bodacc-api", url="http://127.0.0.1:9/records", now=NOW)

    report = collect(bootstrap(env_settings), now=NOW)
    assert report["outbox"]["email"] == {"queued": 1, "due": 3, "claimed": 0, "failed": 1, "sent_24h": 0}
    assert report["feeds"][0]["name"] == "bodacc" and report["feeds"][0]["state"] == "jamais relevé"
    assert not report["prefect"]["available"] and "PREFECT_API_URL" in report["prefect"]["note"]

    from orchestrator.cli.main import app

    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "E-mail" in result.output and "bodacc" in result.output  # channels by their French names


def test_unreachable_prefect_api_is_said_plainly():
    runs = last_runs("http://127.0.0.1:9/api", timeout=0.5)
    assert not runs["available"] and "injoignable" in runs["note"]
