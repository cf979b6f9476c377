"""Notices to people who are not the business (issue 17, point 2): the ambassador's callback e-mail is a row of the
notices' outbox, queued in the unit of work of the callback request and sent by the dispatcher like an operator's
alert; once per task and day; erased with the business and purged by the retention policy once sent. The migration
that turned the operators' outbox into this table keeps its rows, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from orchestrator.app import answers, callbacks, privacy
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.dispatch import dispatch_all
from store.db import dispose_engines
from store.migrate import alembic_config, upgrade
from store.models import Business, CallTask, Notice
from tests.conftest import POSTGRES_URL
from tests.utils.outreach import business, campaign, context, enrol
from tests.utils.schemas import scratch_schema

NOTICES = Notice.__table__
# A Monday, 9 h in Paris.
MONDAY = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)


def _message(engine, *, ctx: dict | None = None, name: str = "Plomberie Durand") -> int:
    campaign_id = campaign(engine, f"bienvenue-{uuid.uuid4().hex[:6]}", "35")
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business(conn, "35238", name=name), ctx=ctx or context(name=name))
    return message_id


def _ask(app, message_id: int, note: str = "Plutôt le mardi") -> callbacks.CallbackAsked:
    return callbacks.ask_callback(app, answers.message(app, message_id), phone="+33612345678", slot="matin",
                                  note=note, sms=False, shown_phone="06 12 34 56 78")


def _notices(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(NOTICES).order_by(NOTICES.c.id)).all()


def test_a_callback_asked_again_another_day_tells_the_ambassador_again(settings, engine, smtp_sink):
    message_id = _message(engine)
    first = _ask(bootstrap(settings, clock=lambda: MONDAY), message_id)
    assert _ask(bootstrap(settings, clock=lambda: MONDAY + dt.timedelta(hours=3)), message_id).again
    later = bootstrap(settings, clock=lambda: MONDAY + dt.timedelta(days=2))
    second = _ask(later, message_id, note="Finalement le jeudi")
    assert second.task_id == first.task_id  # the same message's task, asked for again
    assert [n.cause_key for n in _notices(engine)] == [f"callback_request:{first.task_id}:2026-12-07",
                                                       f"callback_request:{first.task_id}:2026-12-09"]
    assert dispatch_all(later) == {} and smtp_sink.received == 2  # campaign figures apart: no message was due
    assert [m["Subject"] for m in smtp_sink.messages] == ["À rappeler : Plomberie Durand"] * 2
    notes = sorted(line for m in smtp_sink.messages for line in m.get_content().splitlines() if "Son message" in line)
    assert notes == ["Son message : « Finalement le jeudi »", "Son message : « Plutôt le mardi »"]


def test_a_message_naming_no_address_queues_no_notice(settings, engine, smtp_sink):
    ctx = context(ambassador_email=None)
    ctx["sender"].pop("email")
    asked = _ask(bootstrap(settings, clock=lambda: MONDAY), _message(engine, ctx=ctx))
    with engine.connect() as conn:
        assert conn.execute(select(CallTask.__table__.c.id)).scalars().all() == [asked.task_id]
    assert _notices(engine) == []


def test_the_sender_hears_of_a_callback_when_no_ambassador_has_an_address(settings, engine, smtp_sink):
    _ask(bootstrap(settings, clock=lambda: MONDAY), _message(engine, ctx=context(ambassador_email=None)))
    assert [n.recipient for n in _notices(engine)] == ["declic@exemple.fr"]


def test_erasure_removes_the_callback_notice_of_that_business_only(settings, engine, smtp_sink):
    app = bootstrap(settings, clock=lambda: MONDAY)
    erased, kept = _message(engine, name="Plomberie Durand"), _message(engine, name="Boulangerie Martin")
    _ask(app, erased)
    _ask(app, kept)
    dispatch_all(app)
    with engine.connect() as conn:
        siret = conn.execute(select(Business.__table__.c.siret).where(
            Business.__table__.c.name == "Plomberie Durand")).scalar_one()
    privacy.erase(app, siret, reason="demande par courriel", actor="ops@declic.example")
    assert [n.subject for n in _notices(engine)] == ["À rappeler : Boulangerie Martin"]


def test_retention_purges_the_callback_notices_once_sent(settings, engine, smtp_sink):
    app = bootstrap(settings, clock=lambda: MONDAY)
    _ask(app, _message(engine, name="Plomberie Durand"))
    dispatch_all(app)
    _ask(app, _message(engine, name="Boulangerie Martin"))  # still waiting for the dispatcher
    later = bootstrap(settings, clock=lambda: MONDAY + dt.timedelta(days=settings.retention_text_days + 1))
    assert privacy.purge(later, dry_run=True)["notice"] == {"Département 35": 1}
    privacy.purge(later, dry_run=False)
    assert [(n.subject, n.status) for n in _notices(engine)] == [("À rappeler : Boulangerie Martin", "planned")]


# --- the migration keeps the operators' alerts ---


def _old_alert_then_upgrade(url: str) -> None:
    command.upgrade(alembic_config(url), "0022")
    old = create_engine(url)
    with old.begin() as conn:
        conn.execute(text(
            "INSERT INTO operatornotice (id, purpose, cause_key, recipient, subject, body, due_at, status, attempts,"
            " created_at) VALUES (7, 'feed_failing', 'feed_failing:bge:2026-12-01', 'ops@declic.example',"
            " '[Déclic] Flux', 'Bonjour', :t, 'sent', 1, :t)"), {"t": MONDAY})
    old.dispose()
    upgrade(url)
    new = create_engine(url)
    with new.begin() as conn:
        rows = conn.execute(text("SELECT id, kind, cause_key, status, business_id FROM notice")).all()
        assert [tuple(r) for r in rows] == [(7, "feed_failing", "feed_failing:bge:2026-12-01", "sent", None)]
        added = conn.execute(NOTICES.insert().values(
            kind="run_failed", cause_key="run_failed:x", recipient="ops@declic.example", subject="s", body="b",
            due_at=MONDAY, status="planned", attempts=0, created_at=MONDAY)).inserted_primary_key[0]
    assert added == 8  # the ids go on after the kept rows
    new.dispose()
    dispose_engines()


def test_sqlite_upgrade_keeps_the_operators_alerts(tmp_path):
    _old_alert_then_upgrade(f"sqlite:///{tmp_path / 'old.db'}")


@pytest.mark.postgres
def test_postgres_upgrade_keeps_the_operators_alerts():
    with scratch_schema(POSTGRES_URL, "n") as url:
        _old_alert_then_upgrade(url)
