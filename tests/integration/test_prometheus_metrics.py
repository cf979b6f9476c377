"""Issue 21: `/metrics` in the Prometheus text format, its figures read from the store at scrape time."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.planning import plan_all
from orchestrator.core.campaign_spec import load_spec
from store.admin import add_partner, apply_campaign
from store.events import store_events
from store.models import Enrollment, Message, Partner, TriggerEvent
from tests.utils.factories import campaign_spec, creation_item
from triggers.partner_api import validate_item
from web.app import create_app

TOKEN = "jeton-de-supervision-0123456789"


def scrape(client: TestClient, **headers) -> dict[tuple[str, tuple], float]:
    reply = client.get("/metrics", headers=headers)
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def test_metrics_match_the_store_and_need_the_token(settings, engine):
    settings.metrics_token = TOKEN
    apply_campaign(engine, load_spec(campaign_spec()), now=dt.datetime.now(dt.UTC))
    add_partner(engine, "bge-35", ["creation"], now=dt.datetime.now(dt.UTC))
    with engine.connect() as conn:
        pid = conn.execute(select(Partner.__table__.c.id)).scalar()
    items = [creation_item(f"m-{i}", email=f"p{i}@exemple.fr") for i in range(4)]
    store_events(engine, [validate_item(item, f"partner:{pid}", "bge-35", today=dt.date.today()) for item in items],
                 now=dt.datetime.now(dt.UTC))
    plan_all(bootstrap(settings))  # on the system clock: the enrollments are recent

    client = TestClient(create_app(bootstrap(settings)))
    assert client.get("/metrics").status_code == 404  # no token: nothing to see
    assert client.get("/metrics", headers={"Authorization": "Bearer autre-chose"}).status_code == 404
    figures = scrape(client, Authorization=f"Bearer {TOKEN}")

    messages, events, enrollments = Message.__table__, TriggerEvent.__table__, Enrollment.__table__
    with engine.connect() as conn:
        planned = conn.execute(select(func.count()).where(messages.c.status == "planned",
                                                          messages.c.channel == "email")).scalar()
        lags = [(e - r).total_seconds() for r, e in conn.execute(
            select(events.c.received_at, enrollments.c.enrolled_at)
            .join(events, events.c.id == enrollments.c.trigger_event_id))]
        accepted = conn.execute(select(func.count()).where(events.c.source == f"partner:{pid}")).scalar()
    assert planned == 4 and len(lags) == 4
    assert figures[("declic_outbox_messages", (("channel", "email"), ("status", "planned")))] == planned
    assert figures[("declic_partner_events", (("partner", "bge-35"), ("status", "accepted")))] == accepted == 4
    assert figures[("declic_planning_lag_seconds_count", ())] == len(lags)
    assert abs(figures[("declic_planning_lag_seconds_sum", ())] - sum(max(0.0, x) for x in lags)) < 1e-6
    assert figures[("declic_events_waiting", ())] == 0


def test_without_a_token_only_internal_addresses_are_answered(settings, engine):
    app = create_app(bootstrap(settings))
    assert TestClient(app).get("/metrics").status_code == 404  # "testclient" is no internal address
    internal = TestClient(app, client=("10.0.0.7", 50000))
    assert scrape(internal)[("declic_events_waiting", ())] == 0


def test_rejected_partner_items_are_counted_by_partner_field_and_motive(settings, engine):
    settings.metrics_token = TOKEN
    token = add_partner(engine, "cma-35-metriques", ["creation"], ["departement:35"], now=dt.datetime.now(dt.UTC))
    client = TestClient(create_app(bootstrap(settings)))
    auth = {"Authorization": f"Bearer {TOKEN}"}
    before = scrape(client, **auth)
    items = [creation_item("r-1", siret_value="73282932000075"),  # bad check digit
             creation_item("r-2", siret_value="73282932000076"),
             {**creation_item("r-3"), "type": "first_hire"},  # a type this partner may not send
             creation_item("r-4")]
    reply = client.post("/api/v1/events", json={"events": items}, headers={"Authorization": f"Bearer {token}"})
    assert reply.status_code == 200 and reply.json()["rejected"] == 3
    after = scrape(client, **auth)
    rejects = {labels: value - before.get((name, labels), 0) for (name, labels), value in after.items()
               if name == "declic_partner_events_rejected_total" and ("partner", "cma-35-metriques") in labels}
    assert sorted(rejects.values()) == [1, 2]
    assert {dict(labels)["field"] for labels in rejects} == {"siret", "type"}
    assert all(":" not in dict(labels)["reason"] for labels in rejects)  # the motive, never a value sent
