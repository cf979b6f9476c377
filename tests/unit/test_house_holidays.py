"""Calls and messages share one French holiday calendar (orchestrator.core.windows)."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations import call_rules
from orchestrator.core import windows


def test_the_call_rules_use_the_planner_calendar() -> None:
    assert call_rules.holiday_subdivision is windows.holiday_subdivision


@pytest.mark.parametrize(
    ("typed", "subdiv"), [("57", "57"), (" 67 ", "6AE"), ("974", "974"), ("35", None), (None, None)]
)
def test_departement_codes_typed_by_people_find_their_subdivision(typed: str | None, subdiv: str | None) -> None:
    assert windows.holiday_subdivision(typed) == subdiv


def test_a_day_is_callable_exactly_when_the_planner_sees_no_holiday_on_a_weekday() -> None:
    day = dt.date(2027, 1, 1)
    for offset in range(730):
        current = day + dt.timedelta(days=offset)
        for subdiv in (None, "6AE", "974", "NC"):
            expected = current.weekday() < 5 and not windows.is_french_holiday(current, subdiv)
            assert call_rules.is_callable_day(current, subdiv) == expected, (current, subdiv)
