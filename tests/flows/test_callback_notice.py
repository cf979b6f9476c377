"""`declic dispatch` (the dispatch flow, under the session's Prefect test harness) sends the ambassador's callback
e-mail that the owner's page queued in the notices' outbox, once (issue 17, point 2)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from typer.testing import CliRunner

from orchestrator.app import answers, callbacks
from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.main import app as cli
from store.models import Notice
from tests.utils.outreach import business, campaign, enrol

NOW = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)


def test_declic_dispatch_sends_the_ambassadors_callback_once(prefect_harness, env_settings, engine, smtp_sink):
    campaign_id = campaign(engine, "bienvenue-35", "35")
    with engine.begin() as conn:
        _, message_id = enrol(conn, campaign_id, business(conn, "35238"))
    app = bootstrap(env_settings, clock=lambda: NOW)
    callbacks.ask_callback(app, answers.message(app, message_id), phone="+33612345678", slot="soir", note="",
                           sms=False, shown_phone="06 12 34 56 78")
    assert smtp_sink.received == 0
    for _ in range(2):
        result = CliRunner().invoke(cli, ["dispatch", "--now", NOW.isoformat()])
        assert result.exit_code == 0, result.output
    assert smtp_sink.received == 1
    (mail,) = smtp_sink.messages
    assert (mail["To"], mail["Subject"]) == ("claire@exemple.fr", "À rappeler : Plomberie Durand")
    assert "Moment préféré : en fin de journée (17 h - 20 h), à partir du mardi 01/12 à 17 h." in mail.get_content()
    with engine.connect() as conn:
        assert conn.execute(select(Notice.status)).scalars().all() == ["sent"]
