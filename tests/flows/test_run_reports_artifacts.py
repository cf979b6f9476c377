"""Issue 21: each run publishes what it did as Prefect artifacts, is named after what ran, and a dispatch
run failing twice in a row, a campaign paused on its error rate and a feed failing for a day e-mail the operators
through their outbox (under the session's Prefect test harness: runs by hand, which alert by themselves)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select

from orchestrator.core.campaign_spec import load_spec
from store.admin import add_partner, apply_campaign
from store.events import store_events
from store.models import Message, Notice
from tests.integration.test_ingest_doors import bodacc_record
from tests.utils.factories import campaign_spec, creation_item
from triggers.partner_api import validate_item

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)
# Events happen before the test's clock, whatever the real date (a fixed NOW and a real 'today' drift apart).
EVENT_DAY = NOW.date() - dt.timedelta(days=3)


def latest(key: str):
    """The newest artifact under `key`, its data decoded, and the name of the run that made it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                            sort=ArtifactSort.CREATED_DESC, limit=1)
        run = client.read_flow_run(artifact.flow_run_id)
    data = json.loads(artifact.data) if artifact.type == "table" and isinstance(artifact.data, str) else artifact.data
    return data, run.name


def test_plan_and_dispatch_runs_publish_their_figures_per_campaign_and_channel(prefect_harness, env_settings,
                                                                               engine, smtp_sink):
    from orchestrator.prefect.flows import dispatch_flow, plan_flow, run_once

    apply_campaign(engine, load_spec(campaign_spec(holdout=50)), now=NOW)
    items = [creation_item(f"a-{i}", email=f"p{i}@exemple.fr", occurred_on=EVENT_DAY) for i in range(10)]
    items.append(creation_item("a-nomail", email=None, occurred_on=EVENT_DAY))
    store_events(engine, [validate_item(item, "partner:0", "bge", today=dt.date.today()) for item in items], now=NOW)

    planned = run_once(plan_flow, now=NOW.isoformat(), trigger_event="4821abcd-0000")
    table, run_name = latest("declic-plan")
    assert run_name == "plan · événement 4821abcd"
    (row,) = table
    assert row["Campagne"] == "bienvenue-35"
    assert row["Inscrites (à contacter)"] == planned["messages"] > 0
    assert row["Groupe témoin"] == planned["enrolled"] - planned["messages"] > 0
    assert row["Écartées"] == 1 and row["Motifs d'écart"] == "aucun canal joignable : 1"
    summary, _ = latest("declic-plan-resume")
    assert f"Inscriptions : {planned['enrolled']}" in summary and "aucun canal joignable : 1" in summary
    assert "Aucune campagne en pause." in summary

    with engine.connect() as conn:
        due = conn.execute(select(func.max(Message.__table__.c.due_at))).scalar()
    sent = run_once(dispatch_flow, now=due.isoformat())
    table, run_name = latest("declic-dispatch")
    assert run_name.startswith("dispatch · ") and run_name[-5:-3].isdigit()
    assert table == [{"Campagne": "bienvenue-35", "Canal": "e-mail", "Envoyés": sent["sent"], "Reportés": 0,
                      "En échec": 0, "Issue inconnue": 0, "Annulés": 0}]
    assert sent["sent"] == planned["messages"] == smtp_sink.received
    summary, _ = latest("declic-dispatch-resume")
    assert f"Envoyés : {sent['sent']}" in summary and f"e-mail : envoyés {sent['sent']}" in summary


def test_an_ingest_run_publishes_its_counts_and_first_rejected_lines(prefect_harness, env_settings, tmp_path):
    from orchestrator.prefect.flows import bodacc_flow, run_once

    path = tmp_path / "annonces.json"
    path.write_text(json.dumps([bodacc_record("A1", "creation", "443061841"),
                                bodacc_record("A2", "radiation", "123456789")]))
    report = run_once(bodacc_flow, path=str(path), today="2026-11-27")
    assert report["read"] == 2 and report["rejected"] == {"invalid SIREN '123456789'": 1}

    summary, run_name = latest("declic-ingest-bodacc")
    assert run_name == "bodacc · annonces.json · 2026-11-27"
    assert "Lignes lues : 2" in summary and "Acceptées : 1" in summary and "Rejetées : 1" in summary
    assert "invalid SIREN '123456789' : 1" in summary and "creation : 1" in summary
    rejects, _ = latest("declic-ingest-bodacc-rejets")
    assert [r["Motif"] for r in rejects] == ["invalid SIREN '123456789'"]


def sent_notices(engine) -> list:
    """The notices' outbox: (kind, recipient, status) of each row."""
    with engine.connect() as conn:
        return conn.execute(select(Notice.kind, Notice.recipient, Notice.status)
                            .order_by(Notice.recipient)).all()


def test_a_dispatch_run_failing_twice_in_a_row_emails_the_operators_once(prefect_harness, env_settings, engine,
                                                                        smtp_sink, monkeypatch):
    from orchestrator.prefect.flows import dispatch_flow, run_once

    monkeypatch.setenv("DECLIC_OPERATOR_EMAILS", "ops@declic.example, astreinte@declic.example")
    # A run that fails before its first batch (no batch per task) stands for any failing dispatch run.
    run_once(dispatch_flow, now=NOW.isoformat())  # a good run first: the streak starts after it
    with pytest.raises(ValueError):
        run_once(dispatch_flow, now=NOW.isoformat(), batches_per_task=0)
    assert smtp_sink.received == 0 and sent_notices(engine) == []  # one failure is not worth an e-mail
    with pytest.raises(ValueError):
        run_once(dispatch_flow, now=NOW.isoformat(), batches_per_task=0)
    # The second in a row: one row per operator in the operators' outbox, sent at once.
    assert sent_notices(engine) == [("run_failed", "astreinte@declic.example", "sent"),
                                    ("run_failed", "ops@declic.example", "sent")]
    assert smtp_sink.received == 2
    assert {m["To"] for m in smtp_sink.messages} == {"ops@declic.example", "astreinte@declic.example"}
    subject = "[Déclic] L'envoi des messages (dispatch) a échoué deux fois de suite"
    assert all(m["Subject"] == subject for m in smtp_sink.messages)
    body = smtp_sink.messages[0].get_content()
    assert "Dernier échec :" in body and "range() arg 3 must not be zero" in body and "Que faire" in body
    with pytest.raises(ValueError):
        run_once(dispatch_flow, now=NOW.isoformat(), batches_per_task=0)
    assert smtp_sink.received == 2 and len(sent_notices(engine)) == 2  # the streak goes on: no new e-mail


def test_a_campaign_paused_by_a_dispatch_run_emails_the_operators_once(prefect_harness, env_settings, engine,
                                                                       smtp_sink, monkeypatch):
    from orchestrator.prefect.flows import dispatch_flow, plan_flow, run_once

    monkeypatch.setenv("DECLIC_OPERATOR_EMAILS", "ops@declic.example")
    monkeypatch.setenv("DECLIC_PAUSE_MIN_SAMPLE", "5")
    apply_campaign(engine, load_spec(campaign_spec()), now=NOW)
    items = [creation_item(f"p-{i}", email=f"p{i}@exemple.fr", occurred_on=EVENT_DAY) for i in range(8)]
    store_events(engine, [validate_item(item, "partner:0", "bge", today=dt.date.today()) for item in items], now=NOW)
    run_once(plan_flow, now=NOW.isoformat())
    smtp_sink.refuse_domains["exemple.fr"] = "550 5.1.1 Unknown user"  # every owner's address is refused
    with engine.connect() as conn:
        due = conn.execute(select(func.max(Message.__table__.c.due_at))).scalar()
    counts = run_once(dispatch_flow, now=due.isoformat())
    assert counts["paused_campaigns"] == 1
    (alert,) = smtp_sink.messages
    assert alert["To"] == "ops@declic.example"
    assert alert["Subject"] == "[Déclic] Campagne « bienvenue-35 » mise en pause"
    body = alert.get_content()
    assert "Déclic a mis en pause la campagne « bienvenue-35 »" in body
    assert "declic campaigns resume bienvenue-35" in body
    assert sent_notices(engine) == [("campaign_paused", "ops@declic.example", "sent")]


def test_a_feed_failing_for_a_day_emails_the_operators_once(prefect_harness, env_settings, engine, smtp_sink,
                                                            monkeypatch):
    from orchestrator.prefect.flows import run_once, watch_feeds_flow
    from store.feeds import add_feed
    from tests.utils.feed_server import Answer, FeedServer

    monkeypatch.setenv("DECLIC_OPERATOR_EMAILS", "ops@declic.example")
    add_partner(engine, "bge", ["creation"], now=NOW)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)  # a day after the feed was added, still no success
    with FeedServer() as server:
        server.routes["/bge.csv"] = lambda seen: Answer(404, b"introuvable")
        add_feed(engine, name="bge", format="partner-csv", url=server.url("/bge.csv"), local=True, partner="bge",
                 now=dt.datetime.now(dt.UTC))
        assert run_once(watch_feeds_flow, now=later.isoformat())["failed"] == 1
        (alert,) = smtp_sink.messages
        assert alert["Subject"] == "[Déclic] Flux « bge » sans succès depuis un jour"
        assert "declic feeds list" in alert.get_content()
        # The next failing run of the same outage says nothing more.
        run_once(watch_feeds_flow, now=(later + dt.timedelta(hours=2)).isoformat())
    assert smtp_sink.received == 1 and sent_notices(engine) == [("feed_failing", "ops@declic.example", "sent")]
