"""One duration vocabulary for the whole campaign YAML (issue 17): `min`, `h`, `d`, `w`, `mo`, `y` (and the French
`j`, `a`) mean the same in a step delay and in a segment age; the old `m` keeps its old meaning in each place (minutes
in a delay, 30 days in an age) and is reported to the campaign's author as ambiguous."""

from __future__ import annotations

import datetime as dt

import pytest

from orchestrator.core.campaign_spec import load_spec, parse_delay, spec_warnings
from orchestrator.core.durations import ambiguous_m, duration_words, parse_duration
from segments.language import parse_age, parse_segment, segment_warnings
from tests.utils.factories import campaign_spec

YEAR = dt.timedelta(days=365)


@pytest.mark.parametrize(("text", "expected"), [
    ("30min", dt.timedelta(minutes=30)), ("4h", dt.timedelta(hours=4)), ("2d", dt.timedelta(days=2)),
    ("3j", dt.timedelta(days=3)), ("2w", dt.timedelta(days=14)), ("6mo", dt.timedelta(days=180)),
    ("1y", dt.timedelta(days=365)), ("1a", dt.timedelta(days=365)), (" 07 d ", dt.timedelta(days=7)),
    (5, dt.timedelta(days=5)), ("0d", dt.timedelta(0)),
])
def test_every_unit_means_the_same_in_a_delay_and_in_an_age(text, expected):
    assert parse_duration(text, "durée", YEAR, old_m="min") == expected
    assert parse_duration(text, "durée", YEAR, old_m="mo") == expected
    assert parse_delay(text) == expected and parse_age(text) == expected


def test_the_old_m_keeps_its_meaning_in_each_place():
    assert parse_delay("30m") == dt.timedelta(minutes=30)
    assert parse_age("6m") == dt.timedelta(days=180)
    spec = load_spec(campaign_spec(
        steps=[{"channel": "email", "delay": "30m", "template": "creation"}],
        segment={"age": {"min": "3m"}}))
    assert spec.steps[0].delay_td == dt.timedelta(minutes=30)


@pytest.mark.parametrize("text", ["3", "3 months", "3M", "m", "-3d", "3.5d", "3s", True])
def test_unreadable_durations_name_the_field_and_show_the_units(text):
    examples = r"\(exemples : 30min, 4h, 2d, 3w, 6mo, 1y\)"
    with pytest.raises(ValueError, match=r"^âge minimal : valeur illisible .*" + examples):
        parse_duration(text, "âge minimal", YEAR, old_m="mo")


def test_limits_and_negatives():
    with pytest.raises(ValueError, match=r"délai : au plus 1 an \(365 jours\), reçu '366d'"):
        parse_duration("366d", "délai", YEAR, old_m="min")
    with pytest.raises(ValueError, match="au plus 1 an"):
        parse_duration("13mo", "délai", YEAR, old_m="min")
    with pytest.raises(ValueError, match="valeur négative refusée"):
        parse_duration(-1, "délai", YEAR, old_m="min")
    assert parse_duration("525600m", "délai", YEAR, old_m="min") == YEAR  # minutes: a year exactly
    with pytest.raises(ValueError, match="au plus 1 an"):
        parse_duration("13m", "âge", YEAR, old_m="mo")  # months: beyond a year


def test_the_old_m_is_reported_as_ambiguous_with_what_it_is_read_as():
    assert ambiguous_m("3m", "délai", "min") == (
        "délai : « 3m » est ambigu, lu ici comme 3 minutes ; écrivez « 3min » (minutes) ou « 3mo » (mois)")
    assert ambiguous_m(" 1m ", "âge", "mo") == (
        "âge : « 1m » est ambigu, lu ici comme 1 mois ; écrivez « 1min » (minutes) ou « 1mo » (mois)")
    for fine in ("3min", "3mo", "3d", 3, None, "illisible"):
        assert ambiguous_m(fine, "délai", "min") is None


def test_a_campaign_reports_every_ambiguous_duration_naming_its_field():
    spec = load_spec(campaign_spec(
        steps=[{"channel": "email", "delay": "0d", "template": "creation"},
               {"channel": "email", "delay": "90m", "template": "creation"}],
        pressure={"max_defer": "600m"},
        schedule={"start": "2027-01-05T10:00:00", "rrule": "RRULE:FREQ=MONTHLY", "min_interval": "30d"},
        segment={"age": {"min": "3m", "max": "2y"},
                 "exclude": {"triggers": {"types": ["creation"], "within": "1m"}}},
    ))
    warnings = spec_warnings(spec)
    assert [w.split(" : ")[0] for w in warnings] == [
        "étape 2, délai (delay)", "attente maximale d'un message (max_defer)", "segment, âge minimal (age.min)",
        "segment, exclusion, période des événements (within)"]
    assert "lu ici comme 90 minutes" in warnings[0] and "lu ici comme 3 mois" in warnings[2]
    new_units = load_spec(campaign_spec(steps=[{"channel": "email", "delay": "90min", "template": "creation"}],
                                        segment={"age": {"min": "3mo"}}))
    assert spec_warnings(new_units) == []
    assert segment_warnings(parse_segment({"age": {"max": "6m"}}), "segment") == [
        "segment, âge maximal (age.max) : « 6m » est ambigu, lu ici comme 6 mois ; écrivez « 6min » (minutes) "
        "ou « 6mo » (mois)"]


def test_durations_in_words():
    assert duration_words("14d", "min") == "14 jours"
    assert duration_words("1y", "mo") == "1 an"
    assert duration_words("6m", "mo") == "6 mois" and duration_words("30m", "min") == "30 minutes"
    assert duration_words("1w", "mo") == "1 semaine" and duration_words(14, "mo") == "14 jours"
