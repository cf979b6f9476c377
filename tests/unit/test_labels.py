"""The catalogue of French labels: one source for the CLI, the dashboard, the exports and the reports."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from orchestrator.core import labels


def test_every_stored_code_has_a_french_label():
    from triggers.model import EVENT_TYPES

    assert set(EVENT_TYPES) <= set(labels.TRIGGERS)
    for status in ("planned", "claimed", "handed_over", "sent", "delivered", "unknown", "failed", "cancelled"):
        assert labels.label("message_status", status) != status
    assert labels.label("arm", "holdout") == "groupe témoin"
    assert labels.label("campaign_status", "paused") == "en pause"
    assert labels.channel("email", lower=True) == "e-mail" and labels.channel("sms", lower=True) == "SMS"


def test_dashboard_and_reports_read_the_catalogue():
    from store import report as metrics
    from web import dashboard

    assert metrics.TRIGGER_LABELS is labels.TRIGGERS
    assert metrics.CHANNEL_LABELS is labels.CHANNELS
    assert dashboard.STATUS_LABELS is labels.CAMPAIGN_STATUS


def test_families_come_from_the_trade_taxonomy():
    assert labels.family("hotellerie_restauration") == "Hôtellerie-restauration"
    assert labels.family(None) == "Autres activités"


def test_run_counters_and_reasons_read_as_french():
    assert labels.run_count("skipped_no_channel") == "non inscrites : aucun canal joignable"
    assert labels.run_count("enrolled") == "entreprises inscrites"
    assert labels.run_count("retry") == "nouvel essai prévu"
    assert labels.run_count("cancelled_opted_out") == "annulés : désinscrite"
    # Sirene says the same as the partner intake.
    assert labels.reject_reason("invalid SIRET (checksum)") == "SIRET invalide (clé de contrôle fausse)"
    assert labels.reject_reason("wrong column count (20 instead of 54)") == "nombre de colonnes faux (20 au lieu de 54)"
    assert labels.reject_reason("SIRET invalide") == "SIRET invalide"
    assert labels.ingest_note("already stored") == "déjà enregistrées"
    for kind in ("run_count", "skip_reason"):
        for text in labels._KINDS[kind].values():
            assert not re.search(r"[a-z]+_[a-z]+", text), text


def test_dates_are_french_and_in_the_given_zone():
    paris = ZoneInfo("Europe/Paris")
    winter = dt.datetime(2026, 12, 4, 21, 59, 50, tzinfo=dt.UTC)
    assert labels.datetime_fr(winter, paris) == "4 déc. 2026, 22 h 59"
    assert labels.datetime_fr("2026-07-01T06:05:00+00:00", paris) == "1 juil. 2026, 8 h 05"
    assert labels.datetime_fr(dt.datetime(2026, 12, 4, 21, 59), paris) == "4 déc. 2026, 22 h 59"  # naive: UTC
    assert labels.date_fr(dt.date(2026, 2, 1), paris) == "1 févr. 2026"
    assert labels.datetime_fr(None, paris) == ""
    # The zone is the deployment's: the same instant is already the next day in Réunion.
    assert labels.datetime_fr(winter, "Indian/Reunion") == "5 déc. 2026, 1 h 59"
    assert labels.date_fr(winter, ZoneInfo("Indian/Reunion")) == "5 déc. 2026"
