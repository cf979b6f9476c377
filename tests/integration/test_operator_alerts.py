"""Issue 21: operator alerts go through the operators' outbox, on SQLite and PostgreSQL: one row per operator
address, queued once per cause, sent by the normal dispatcher to a real SMTP server, retried when the relay
refuses; with the store unreachable, straight to the relay."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from orchestrator.app import alerts
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all, dispatch_notices
from orchestrator.app.settings import Settings
from orchestrator.core.campaign_spec import load_spec
from store.admin import add_partner, apply_campaign, set_campaign_status
from store.feeds import add_feed, get_feed, record_failure
from store.models import Campaign, Notice
from store.planning import pause_campaigns
from tests.conftest import TEST_SECRET
from tests.utils.factories import campaign_spec

OPERATORS = "ops@declic.example; astreinte@declic.example"


def notices(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(Notice.kind, Notice.recipient, Notice.status,
                                   Notice.attempts).order_by(Notice.recipient)).all()


def paused(engine, name: str = "bienvenue-35") -> tuple[int, dt.datetime]:
    """A campaign paused on its error rate, as the dispatcher pauses one."""
    now = dt.datetime.now(dt.UTC)
    apply_campaign(engine, load_spec(campaign_spec(name=name)), now=dt.datetime.now(dt.UTC))
    with engine.begin() as conn:
        campaign_id = conn.execute(select(Campaign.id).where(Campaign.name == name)).scalar()
        reason = (f"Mise en pause automatique : 12 envois sur 40 ont échoué. Dernière erreur : 550 5.1.1 Unknown "
                  f"user. Vérifiez la liste des destinataires, puis relancez avec « declic campaigns resume {name} ».")
        pause_campaigns(conn, {campaign_id: reason}, now)
    return campaign_id, now


def test_an_alert_is_queued_once_per_cause_and_sent_by_the_dispatcher(settings, engine, smtp_sink):
    settings.operator_emails = OPERATORS
    app = bootstrap(settings)
    campaign_id, now = paused(engine)
    with engine.connect() as conn:
        row = conn.execute(select(Campaign.paused_reason, Campaign.paused_at).where(Campaign.id == campaign_id)).one()
    alert = alerts.paused_alert(campaign_id, "bienvenue-35", row.paused_reason, row.paused_at, app.zone)
    assert alerts.queue(app, alert) == 2  # one row per operator address
    assert alerts.queue(app, alert) == 0  # the same cause again (an automation firing twice): nothing new
    assert smtp_sink.received == 0  # queued, not sent yet

    dispatch_all(app)  # the normal dispatcher sends the operators' rows with the rest
    assert [(n.kind, n.recipient, n.status) for n in notices(engine)] == [
        ("campaign_paused", "astreinte@declic.example", "sent"), ("campaign_paused", "ops@declic.example", "sent")]
    assert smtp_sink.received == 2 and sorted(m["To"] for m in smtp_sink.messages) == [
        "astreinte@declic.example", "ops@declic.example"]
    message = smtp_sink.messages[0]
    assert message["Subject"] == "[Déclic] Campagne « bienvenue-35 » mise en pause"
    body = message.get_content()
    assert "550 5.1.1 Unknown user" in body and "declic campaigns resume bienvenue-35" in body
    assert "Déclic, alerte d'exploitation automatique." in body
    assert "List-Unsubscribe" not in message  # an operator's alert, not a campaign message
    dispatch_all(app)
    assert smtp_sink.received == 2


def test_a_refused_alert_waits_and_leaves_with_a_later_dispatch(settings, engine, smtp_sink):
    settings.operator_emails = "ops@declic.example"
    app = bootstrap(settings)
    campaign_id, now = paused(engine)
    smtp_sink.refuse_for(60)
    assert alerts.notify_campaign_paused(app, campaign_id) == {"retry": 1}
    assert [(n.status, n.attempts) for n in notices(engine)] == [("planned", 1)]
    smtp_sink.refuse_for(0)
    assert dispatch_notices(app) == {}  # not due before its backoff
    assert dispatch_notices(app, now=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=2)) == {"sent": 1}
    assert smtp_sink.received == 1 and [(n.status, n.attempts) for n in notices(engine)] == [("sent", 2)]


def test_a_campaign_resumed_before_the_alert_left_gets_none(settings, engine, smtp_sink):
    settings.operator_emails = "ops@declic.example"
    app = bootstrap(settings)
    campaign_id, _ = paused(engine)
    set_campaign_status(engine, "bienvenue-35", "active", now=dt.datetime.now(dt.UTC))
    assert alerts.notify_campaign_paused(app, campaign_id) == {}
    assert notices(engine) == [] and smtp_sink.received == 0


def test_a_feed_is_reported_after_a_day_without_success_once_per_outage(settings, engine, smtp_sink):
    settings.operator_emails = "ops@declic.example"
    app = bootstrap(settings)
    add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    feed = add_feed(engine, name="bge", format="partner-csv", url="https://bge.example/evenements.csv",
                    partner="bge", now=dt.datetime.now(dt.UTC))
    added = dt.datetime.now(dt.UTC)
    record_failure(engine, feed, now=added + dt.timedelta(hours=2), error="réponse 503 du serveur")
    assert alerts.notify_feed_failing(app, "bge", now=added + dt.timedelta(hours=3)) == {}  # not a day yet
    record_failure(engine, get_feed(engine, "bge"), now=added + dt.timedelta(hours=25), error="réponse 503")
    assert alerts.notify_feed_failing(app, "bge", now=added + dt.timedelta(hours=25)) == {"sent": 1}
    assert alerts.notify_feed_failing(app, "bge", now=added + dt.timedelta(hours=30)) == {}  # the same outage
    (message,) = smtp_sink.messages
    assert message["Subject"] == "[Déclic] Flux « bge » sans succès depuis un jour"
    assert "(2 échecs de suite)" in message.get_content() and "réponse 503" in message.get_content()


def test_an_unreachable_store_sends_the_alert_straight_to_the_relay(smtp_sink, tmp_path):
    # Nothing listens on port 1: the store cannot be written, which is when the operators most need to know.
    settings = Settings(home=tmp_path, database_url="postgresql+psycopg://postgres@127.0.0.1:1/declic",
                        secret_key=TEST_SECRET, smtp_port=smtp_sink.port, operator_emails="ops@declic.example")
    app = bootstrap(settings)
    at = dt.datetime(2026, 12, 4, 9, 5, tzinfo=dt.UTC)
    alert = alerts.run_failed_alert("dispatch", "dispatch · 10:05", "connexion refusée", ["FAILED", "FAILED"], at,
                                    "d1:s1", app.zone)
    assert alerts.notify(app, alert) == {}
    (message,) = smtp_sink.messages
    assert message["To"] == "ops@declic.example"
    assert message["Subject"] == "[Déclic] L'envoi des messages (dispatch) a échoué deux fois de suite"
    assert "connexion refusée" in message.get_content()
