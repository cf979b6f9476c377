"""Every duration of a campaign spec is bounded: a typo such as `999999999d` is refused with a short French
error naming the field, instead of being saved and making the planner overflow later."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from orchestrator.core.campaign_spec import load_spec, parse_delay
from segments.language import parse_age, parse_segment
from tests.utils.factories import campaign_spec


def refused(spec: dict) -> str:
    with pytest.raises(ValidationError) as caught:
        load_spec(spec)
    [error] = caught.value.errors()
    return ".".join(map(str, error["loc"])) + " | " + error["msg"]


@pytest.mark.parametrize("delay", ["999999999d", "9999999999999999999999d", "731d", "17521h", "1051201m", 999999999,
                                   10**30])
def test_a_step_delay_beyond_two_years_is_refused_naming_the_field(delay):
    message = refused(campaign_spec(steps=[{"channel": "email", "delay": delay, "template": "creation"}]))
    assert message.startswith("steps.0.delay | ")
    assert "délai de l'étape (delay) : au plus 2 ans (730 jours)" in message


@pytest.mark.parametrize("delay", [-1, "-3d"])
def test_a_negative_step_delay_is_refused(delay):
    message = refused(campaign_spec(steps=[{"channel": "email", "delay": delay, "template": "creation"}]))
    assert message.startswith("steps.0.delay | ") and "délai de l'étape (delay)" in message


def test_sane_durations_still_pass():
    spec = load_spec(campaign_spec(
        steps=[{"channel": "email", "delay": "0d", "template": "creation"},
               {"channel": "email", "delay": "730d", "template": "creation"},
               {"channel": "email", "delay": "48h", "template": "creation"}],
        pressure={"caps": [{"messages": 2, "days": 365}], "max_defer": "365d"},
        segment={"age": {"min": "3m", "max": "100y"}, "triggers": {"types": ["creation"], "within": "99y"}},
        schedule={"start": "2027-01-05T10:00:00", "rrule": "RRULE:FREQ=MONTHLY", "min_interval": "730d"},
    ))
    assert spec.steps[1].delay_td == dt.timedelta(days=730)
    assert parse_delay("30m") == dt.timedelta(minutes=30)


def test_max_defer_and_caps_are_bounded():
    assert refused(campaign_spec(pressure={"max_defer": "366d"})).startswith(
        "pressure.max_defer | Value error, attente maximale d'un message (max_defer) : au plus 1 an (365 jours)")
    assert refused(campaign_spec(pressure={"caps": [{"messages": 1, "days": 100000}]})).startswith(
        "pressure.caps.0.days | ")


def test_schedule_interval_and_start_are_bounded():
    base = {"start": "2027-01-05T10:00:00", "rrule": "RRULE:FREQ=MONTHLY"}
    assert refused(campaign_spec(schedule={**base, "min_interval": "99999999d"})).startswith(
        "schedule.min_interval | Value error, intervalle minimal entre deux contacts (min_interval) : au plus 2 ans")
    assert "début du calendrier (start) : entre 2000 et 2100" in refused(
        campaign_spec(schedule={**base, "start": "9999-12-31T23:00:00"}))


@pytest.mark.parametrize(("segment", "where", "field"), [
    ({"age": {"min": "999999999y"}}, "segment.age", "âge minimal (age.min)"),
    ({"age": {"max": 10**12}}, "segment.age", "âge maximal (age.max)"),
    ({"triggers": {"types": ["creation"], "within": "101y"}}, "segment.triggers.within",
     "période des événements (within)"),
])
def test_segment_ages_are_bounded_to_a_hundred_years(segment, where, field):
    message = refused(campaign_spec(segment=segment))
    assert message.startswith(f"{where} | ") and f"{field} : au plus 100 ans" in message


def test_parse_age_never_overflows():
    with pytest.raises(ValueError, match="au plus 100 ans"):
        parse_age("99999999999999999999y")
    with pytest.raises(ValueError, match="au plus 100 ans"):
        parse_segment({"exclude": {"age": {"min": "36501d"}}})
    assert parse_age("100y") == dt.timedelta(days=36500)
