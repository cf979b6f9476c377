"""Issue 21: the run reports and alert decisions are pure: counters in, French tables and texts out."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from types import SimpleNamespace as NS

from orchestrator.app import alerts
from orchestrator.core import run_reports
from triggers.model import Reject


def test_plan_table_counts_enrolled_held_out_and_skipped_by_reason_per_campaign():
    tally: Counter = Counter()
    plan = NS(enrollments=[NS(campaign_id=1, arm="treatment"), NS(campaign_id=1, arm="holdout")],
              skipped=[NS(campaign_id=1, reason="holdout"), NS(campaign_id=1, reason="capped"),
                       NS(campaign_id=2, reason="no_channel")])
    run_reports.tally_plan(tally, plan)
    table, summary = run_reports.plan_artifacts({"events": 3, "enrolled": 2}, tally, {1: "a", 2: "b"},
                                                [("b", "Mise en pause automatique.")])
    assert table.key == "declic-plan" and summary.key == "declic-plan-resume"
    a, b = table.table
    assert (a["Campagne"], a["Inscrites (à contacter)"], a["Groupe témoin"], a["Écartées"]) == ("a", 1, 1, 1)
    assert a["Motifs d'écart"] == "plafond de sollicitations atteint : 1"
    assert b["Motifs d'écart"] == "aucun canal joignable : 1"
    assert "- **b** : Mise en pause automatique." in summary.markdown


def test_dispatch_tally_sorts_outcomes_per_campaign_and_channel():
    tally: Counter = Counter()
    rows = [NS(id=i, campaign_id=7, channel="email" if i < 4 else "sms") for i in range(6)]
    results = [NS(message_id=0, outcome="sent"), NS(message_id=1, outcome="transient"),
               NS(message_id=2, outcome="permanent"), NS(message_id=4, outcome="abandoned")]
    run_reports.tally_sends(tally, rows, results, {3: "opted_out", 5: "campaign_paused"})
    (table, _) = run_reports.dispatch_artifacts({"sent": 1}, tally, {7: "c"}, [])
    email, sms = table.table
    assert (email["Envoyés"], email["Reportés"], email["En échec"], email["Annulés"]) == (1, 1, 1, 1)
    assert (sms["Canal"], sms["Issue inconnue"], sms["Reportés"]) == ("SMS", 1, 1)


def test_ingest_keeps_the_first_rejected_lines_without_the_raw_content():
    first = run_reports.FirstRejects(limit=1)
    first.write(Reject(12, "siret", "clé SIRET invalide", raw="Jean Dupont;jean@exemple.fr"))
    first.write(Reject(13, "siret", "clé SIRET invalide"))
    assert first.rows == [{"Ligne": 12, "Champ": "siret", "Motif": "clé SIRET invalide"}]
    summary, rejects = run_reports.ingest_artifacts(
        "sirene", "stock x.zip", {"read": 3, "accepted": 1, "rejected": {"clé SIRET invalide": 2},
                                  "events": {"creation": 1}}, first.rows)
    assert summary.key == "declic-ingest-sirene" and rejects.key == "declic-ingest-sirene-rejets"
    assert "Rejetées : 2" in summary.markdown and "jean@" not in json.dumps(rejects.table)


def test_json_log_line_is_one_object_and_text_stays_french():
    line = run_reports.log_line("json", "dispatch.done", "envoi terminé", run_id="r1", counts={"sent": 2})
    assert json.loads(line) == {"event": "dispatch.done", "run_id": "r1", "counts": {"sent": 2}}
    assert run_reports.log_line("text", "dispatch.done", "envoi terminé") == "envoi terminé"


def test_alert_from_the_second_failure_in_a_row_keyed_by_its_streak():
    def alert(states):
        at = dt.datetime(2026, 12, 4, 9, 5, tzinfo=dt.UTC)
        return alerts.run_failed_alert("dispatch", "r", "x", states, at, "d1:s1", "Europe/Paris")

    assert alert(["FAILED", "COMPLETED"]) is None
    second = alert(["FAILED", "CRASHED", "COMPLETED"])
    assert second.subject == "[Déclic] L'envoi des messages (dispatch) a échoué deux fois de suite"
    assert "4 déc. 2026, 10 h 05" in second.body and "Que faire" in second.body
    # Later runs of the same streak give the same cause: the outbox queues it once.
    assert alert(["FAILED", "FAILED", "FAILED"]).cause_key == second.cause_key == "run_failed:d1:s1"


def test_a_feed_is_named_once_when_it_reaches_a_day_without_success():
    now = dt.datetime(2026, 12, 2, 12, tzinfo=dt.UTC)
    since = now - dt.timedelta(days=1, minutes=5)
    failed = [{"feed": "bge", "failed": True, "state": "échec: 503"}]
    assert alerts.failing_feeds({"bge": (since, now - dt.timedelta(hours=2))}, failed, now) == [("bge", "échec: 503")]
    assert alerts.failing_feeds({"bge": (since, now - dt.timedelta(minutes=1))}, failed, now) == []
    assert alerts.failing_feeds({"bge": (now - dt.timedelta(hours=3), None)}, failed, now) == []
