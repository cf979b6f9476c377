"""Pure call-time rules: windows, holidays, 4 attempts in 30 days, 60 days after a refusal."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.call_rules import (
    CALL_WINDOWS,
    CallAttempt,
    holiday_subdivision,
    is_call_allowed,
    is_callable_day,
    next_call_slot,
)
from integrations.call_task import next_call_slot as reexported

PARIS = ZoneInfo("Europe/Paris")
REUNION = ZoneInfo("Indian/Reunion")


def paris(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


def test_the_rules_are_reachable_from_the_channel_module() -> None:
    assert reexported is next_call_slot


@pytest.mark.parametrize(
    ("now", "slot"),
    [
        (paris(2026, 11, 27, 9, 0), paris(2026, 11, 27, 10, 0)),  # Friday morning, before opening
        (paris(2026, 11, 27, 10, 0), paris(2026, 11, 27, 10, 0)),
        (paris(2026, 11, 27, 11, 17), paris(2026, 11, 27, 11, 17)),
        (paris(2026, 11, 27, 13, 0), paris(2026, 11, 27, 14, 0)),  # lunch break
        (paris(2026, 11, 27, 13, 59), paris(2026, 11, 27, 14, 0)),
        (paris(2026, 11, 27, 19, 59), paris(2026, 11, 27, 19, 59)),
        (paris(2026, 11, 27, 20, 0), paris(2026, 11, 30, 10, 0)),  # Friday evening -> Monday
        (paris(2026, 11, 28, 11, 0), paris(2026, 11, 30, 10, 0)),  # Saturday
        (paris(2026, 11, 29, 15, 0), paris(2026, 11, 30, 10, 0)),  # Sunday
        (paris(2026, 11, 11, 11, 0), paris(2026, 11, 12, 10, 0)),  # 11 November, Armistice
        (paris(2026, 12, 24, 20, 0), paris(2026, 12, 28, 10, 0)),  # Christmas then the weekend
        (paris(2026, 5, 1, 9, 0), paris(2026, 5, 4, 10, 0)),  # 1 May (Friday)
    ],
)
def test_calls_only_on_working_days_in_the_two_windows(now: dt.datetime, slot: dt.datetime) -> None:
    assert next_call_slot(now, "Europe/Paris") == slot


def test_a_utc_or_naive_now_is_read_as_utc() -> None:
    # 08:30 UTC is 09:30 in Paris in winter: the slot is 10:00 Paris = 09:00 UTC.
    expected = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    assert next_call_slot(dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC), "Europe/Paris") == expected
    assert next_call_slot(dt.datetime(2026, 11, 27, 8, 30), "Europe/Paris") == expected


def test_summer_time_is_respected() -> None:
    # 07:30 UTC on 2 July is 09:30 in Paris (UTC+2).
    slot = next_call_slot(dt.datetime(2027, 7, 2, 7, 30, tzinfo=dt.UTC), PARIS)
    assert slot == paris(2027, 7, 2, 10, 0)
    assert slot.utcoffset() == dt.timedelta(hours=2)


def test_alsace_moselle_has_good_friday_and_26_december() -> None:
    good_friday = paris(2027, 3, 26, 9, 0)
    assert next_call_slot(good_friday, PARIS) == paris(2027, 3, 26, 10, 0)
    # Moselle: Good Friday, the weekend, then Easter Monday (everywhere) -> Tuesday.
    assert next_call_slot(good_friday, PARIS, subdiv=holiday_subdivision("57")) == paris(2027, 3, 30, 10, 0)
    assert not is_callable_day(dt.date(2028, 12, 26), holiday_subdivision("67"))
    assert is_callable_day(dt.date(2028, 12, 26), None)


def test_overseas_departements_have_their_own_holidays_and_clock() -> None:
    # 20 December is the abolition of slavery in La Réunion.
    now = dt.datetime(2027, 12, 20, 9, 0, tzinfo=REUNION)
    assert next_call_slot(now, REUNION, subdiv=holiday_subdivision("974")) == dt.datetime(
        2027, 12, 21, 10, 0, tzinfo=REUNION
    )
    assert next_call_slot(now, REUNION) == dt.datetime(2027, 12, 20, 10, 0, tzinfo=REUNION)


def test_at_most_four_attempts_in_thirty_days() -> None:
    history = [CallAttempt(paris(2026, 11, d, 10, 30), "no_answer") for d in (2, 5, 9, 12)]
    # The first attempt leaves the 30-day window on 2 December at 10:30.
    assert next_call_slot(paris(2026, 11, 13, 10, 0), PARIS, history) == paris(2026, 12, 2, 10, 30)
    three = history[1:]
    assert next_call_slot(paris(2026, 11, 13, 10, 0), PARIS, three) == paris(2026, 11, 13, 10, 30)


def test_sixty_days_of_silence_after_a_refusal() -> None:
    history = [CallAttempt(paris(2026, 11, 20, 11, 0), "refused")]
    # 60 days later is Tuesday 19 January 2027, 11:00.
    assert next_call_slot(paris(2026, 11, 20, 11, 5), PARIS, history) == paris(2027, 1, 19, 11, 0)


def test_a_refusal_landing_on_a_closed_day_moves_to_the_next_window() -> None:
    # 60 days after Wednesday 2 December 2026 at 19:30 is Sunday 31 January 2027.
    history = [CallAttempt(paris(2026, 12, 2, 19, 30), "refused")]
    assert next_call_slot(paris(2026, 12, 3, 10, 0), PARIS, history) == paris(2027, 2, 1, 10, 0)


def test_attempts_are_spaced_by_the_minimum_gap() -> None:
    history = [CallAttempt(paris(2026, 11, 27, 11, 0), "no_answer")]
    assert next_call_slot(paris(2026, 11, 27, 11, 5), PARIS, history) == paris(2026, 11, 30, 10, 0)
    assert next_call_slot(paris(2026, 11, 27, 11, 5), PARIS, history, min_gap=dt.timedelta(hours=3)) == paris(
        2026, 11, 27, 14, 0
    )


def test_a_naive_history_is_read_as_utc() -> None:
    history = [CallAttempt(dt.datetime(2026, 11, 20, 10, 0), "refused")]  # 11:00 Paris
    assert next_call_slot(paris(2026, 11, 21, 10, 0), PARIS, history) == paris(2027, 1, 19, 11, 0)


def test_is_call_allowed() -> None:
    assert is_call_allowed(paris(2026, 11, 27, 10, 0), PARIS)
    assert not is_call_allowed(paris(2026, 11, 27, 13, 30), PARIS)
    assert not is_call_allowed(paris(2026, 11, 28, 10, 30), PARIS)


moments = st.datetimes(
    min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2028, 12, 31), timezones=st.just(dt.UTC)
)
outcomes = st.sampled_from(["no_answer", "refused", "done"])


@settings(max_examples=300, deadline=None)
@given(now=moments, history=st.lists(st.tuples(moments, outcomes), max_size=6))
def test_every_slot_obeys_every_rule(now: dt.datetime, history: list[tuple[dt.datetime, str]]) -> None:
    attempts = [CallAttempt(at, outcome) for at, outcome in history]
    slot = next_call_slot(now, PARIS, attempts)
    assert slot is not None
    assert slot >= now
    local = slot.astimezone(PARIS)
    assert is_callable_day(local.date())
    assert any(opens <= local.time() < closes for opens, closes in CALL_WINDOWS)
    past = [a for a in attempts if a.at <= slot]
    assert sum(1 for a in past if slot - a.at < dt.timedelta(days=30)) < 4
    assert all(slot - a.at >= dt.timedelta(days=60) for a in past if a.outcome == "refused")
    assert all(slot - a.at >= dt.timedelta(days=1) for a in past)
