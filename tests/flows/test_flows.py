"""The flows under the Prefect engine (one test server for the session), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import requests

from orchestrator.core.campaign_spec import load_spec
from store.admin import add_partner, apply_campaign
from tests.utils.factories import campaign_spec, creation_item

# A Tuesday evening inside the building trades' window, far from holidays (as in test_email_journey).
NOW = dt.datetime(2026, 12, 1, 16, 45, tzinfo=dt.UTC)
# Events happen before the test's clock, whatever the real date (a fixed NOW and a real 'today' drift apart).
EVENT_DAY = NOW.date() - dt.timedelta(days=3)


def push(base, token, items):
    reply = requests.post(f"{base}/api/v1/events", json={"events": items},
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)
    reply.raise_for_status()
    return reply.json()


def test_plan_then_dispatch_flows_deliver_each_message_once(prefect_harness, env_settings, engine, smtp_sink,
                                                            live_server):
    from orchestrator.prefect.flows import dispatch_flow, plan_flow, run_once

    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    token = add_partner(engine, "bge", ["creation"], now=NOW)
    push(live_server, token, [creation_item(f"f-{i}", email=f"patron{i}@exemple.fr", occurred_on=EVENT_DAY)
                              for i in range(30)])

    planned = run_once(plan_flow, now=NOW.isoformat(), limit=7, trigger_event="test")
    assert planned["events"] == 30 and planned["messages"] == 30
    sent = run_once(dispatch_flow, now=(NOW + dt.timedelta(hours=1)).isoformat(), limit=8)
    assert sent["sent"] == 30
    assert smtp_sink.received == 30 and smtp_sink.duplicates() == {}
    # A second run finds nothing: no message leaves twice.
    assert run_once(dispatch_flow, now=(NOW + dt.timedelta(hours=1)).isoformat()) == {}
    assert smtp_sink.received == 30


def test_partner_request_succeeds_when_prefect_is_unreachable(engine, live_server, monkeypatch):
    # The batch is committed before the event is emitted: an unreachable Prefect API is logged, never fatal.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    token = add_partner(engine, "bge", ["creation"], now=NOW)
    assert push(live_server, token, [creation_item("u-1", occurred_on=EVENT_DAY)])["accepted"] == 1


def test_announce_posts_one_event_per_batch_to_the_prefect_api(monkeypatch):
    from integrations.loopback import LoopbackPeer, Reply
    from web.api import TRIGGER_RECEIVED, BatchResult, announce_batch

    class Partner:
        id, name = 12, "bge"

    # A real HTTP peer standing for the Prefect API's events endpoint (it answers 204).
    with LoopbackPeer(lambda request: Reply(204, None)) as api:
        monkeypatch.setenv("PREFECT_API_URL", api.url + "/api")
        announce_batch(Partner(), BatchResult(accepted=3, duplicate=1, rejected=0, items=[]),
                       dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC))
    (request,) = api.received
    assert (request.method, request.path) == ("POST", "/api/events")
    (event,) = request.json()
    assert event["event"] == TRIGGER_RECEIVED
    assert event["occurred"] == "2026-12-01T09:00:00+00:00"  # the App's clock, given by the route
    assert event["resource"]["prefect.resource.id"] == "declic.partner.12"
    assert event["payload"] == {"accepted": 3, "duplicate": 1, "rejected": 0}



def test_intake_flows_call_the_other_rooms_functions(prefect_harness, env_settings, engine):
    from orchestrator.prefect.flows import deadlines_flow, rollup_flow, run_once, watch_feeds_flow
    from store.feeds import add_feed, get_feed
    from tests.utils.feed_server import Answer, FeedServer

    add_partner(engine, "bge", ["creation"], now=NOW)
    day = (NOW.date() - dt.timedelta(days=2)).isoformat()
    body = ("external_id;type;siret;occurred_on;naf_code;commune_code\n"
            f"w1;creation;73282932000074;{day};43.22A;35238\n").encode()
    with FeedServer() as server:
        server.routes["/bge.csv"] = [Answer(200, body, {"ETag": '"1"'})]
        add_feed(engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
                 now=dt.datetime.now(dt.UTC))
        assert run_once(watch_feeds_flow) == {"feeds": 1, "events": 1, "failed": 0}
    assert get_feed(engine, "bge").etag == '"1"'

    report = run_once(deadlines_flow, today="2026-12-01")
    assert "due" in report and "read" in report
    assert "rollup_rows" in run_once(rollup_flow, day="2026-11-30")
