"""Recurrence expansion in the owner's time zone, catch-up after downtime, slots of holiday occurrences."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from orchestrator.core.schedule import check_rule, due_occurrence, next_occurrences, occurrences_between
from orchestrator.core.windows import holiday_checker, next_slot, window_for

PARIS = ZoneInfo("Europe/Paris")
RULE = "RRULE:FREQ=MONTHLY;BYDAY=1TU"
START = dt.datetime(2027, 1, 5, 9, 0)  # first Tuesday of January 2027, 09:00 wall-clock


def test_first_tuesday_stays_at_nine_across_daylight_saving():
    got = next_occurrences(START, RULE, "Europe/Paris", dt.datetime(2027, 2, 10, tzinfo=dt.UTC), 5)
    local = [g.astimezone(PARIS) for g in got]
    assert [x.date() for x in local] == [dt.date(2027, 3, 2), dt.date(2027, 4, 6), dt.date(2027, 5, 4),
                                         dt.date(2027, 6, 1), dt.date(2027, 7, 6)]
    assert {x.hour for x in local} == {9}
    # Winter 08:00 UTC, summer (after 28 March 2027) 07:00 UTC.
    assert [g.hour for g in got[:2]] == [8, 7]
    autumn = next_occurrences(START, RULE, "Europe/Paris", dt.datetime(2027, 10, 10, tzinfo=dt.UTC), 2)
    assert [g.hour for g in autumn] == [8, 8]  # November, December: back to UTC+1


def test_overseas_owner_time_zone():
    got = next_occurrences(dt.datetime(2027, 1, 4, 8, 0), "FREQ=WEEKLY;BYDAY=MO", "Indian/Reunion",
                           dt.datetime(2027, 1, 1, tzinfo=dt.UTC), 1)
    assert got[0] == dt.datetime(2027, 1, 4, 4, 0, tzinfo=dt.UTC)


def test_single_date_campaign():
    at = dt.datetime(2027, 3, 9, 10, 0)
    assert occurrences_between(at, None, "Europe/Paris", None, dt.datetime(2027, 4, 1, tzinfo=dt.UTC)) == [
        dt.datetime(2027, 3, 9, 9, 0, tzinfo=dt.UTC)]
    assert occurrences_between(at, None, "Europe/Paris", dt.datetime(2027, 3, 9, 9, tzinfo=dt.UTC),
                               dt.datetime(2027, 4, 1, tzinfo=dt.UTC)) == []


def test_missed_occurrences_run_once_on_catch_up():
    # Engine down from January to mid-May: only the May occurrence runs, standing for three missed ones.
    last = dt.datetime(2027, 1, 5, 8, 0, tzinfo=dt.UTC)
    at, missed = due_occurrence(START, RULE, "Europe/Paris", last, dt.datetime(2027, 5, 15, tzinfo=dt.UTC))
    assert at.astimezone(PARIS).date() == dt.date(2027, 5, 4) and missed == 3
    # Once it has run, nothing is due until June.
    assert due_occurrence(START, RULE, "Europe/Paris", at, dt.datetime(2027, 5, 31, tzinfo=dt.UTC)) == (None, 0)


def test_holiday_occurrence_goes_to_the_next_allowed_slot():
    # 1 May 2029 is a Tuesday and a holiday: sent on Wednesday 2 May at the trade's first slot.
    at = next_occurrences(START, RULE, "Europe/Paris", dt.datetime(2029, 4, 20, tzinfo=dt.UTC), 1)[0]
    assert at.astimezone(PARIS).date() == dt.date(2029, 5, 1)
    slot = next_slot(at, window_for("batiment"), "Europe/Paris", holiday_checker(None)).astimezone(PARIS)
    assert (slot.date(), slot.hour, slot.minute) == (dt.date(2029, 5, 2), 7, 0)


@pytest.mark.parametrize("rule", ["FREQ=SOMETIMES", "FREQ=HOURLY", "RRULE:FREQ=MONTHLY;BYDAY=9XX"])
def test_bad_rules_are_refused_in_french(rule):
    with pytest.raises(ValueError, match="récurrence"):
        check_rule(rule)
