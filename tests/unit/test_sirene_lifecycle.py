"""Life-cycle stage from events and age."""

from __future__ import annotations

import datetime as dt

from triggers.lifecycle import STAGES, lifecycle_stage

TODAY = dt.date(2026, 11, 27)


def stage(creation=None, state="active", events=()):
    return lifecycle_stage(today=TODAY, creation_date=creation, state=state, events=events)


def ago(days: int) -> dt.date:
    return TODAY - dt.timedelta(days=days)


def test_age_gives_creation_then_consolidation():
    assert stage(creation=ago(100)) == "creation"
    assert stage(creation=ago(4 * 365)) == "consolidation"
    assert stage() is None


def test_recent_events_set_the_stage_and_the_most_recent_wins():
    assert stage(creation=ago(5000), events=[("first_hire", ago(30))]) == "first_hires"
    assert stage(creation=ago(5000), events=[("takeover", ago(200))]) == "transfer"
    assert (
        stage(creation=ago(5000), events=[("takeover", ago(200)), ("critical_period", ago(20))])
        == "critical_period"
    )


def test_old_events_fall_back_to_age():
    assert stage(creation=ago(5000), events=[("critical_period", ago(400))]) == "consolidation"
    assert stage(creation=ago(5000), events=[("first_hire", ago(800))]) == "consolidation"


def test_closed_state_or_closure_event_is_closed():
    assert stage(creation=ago(10), state="closed") == "closed"
    assert stage(creation=ago(10), events=[("closure", ago(3))]) == "closed"


def test_creation_event_dates_an_unknown_business():
    assert stage(events=[("creation", ago(40))]) == "creation"


def test_every_result_is_a_known_stage():
    for result in (stage(creation=ago(1)), stage(creation=ago(9000)), stage(state="closed")):
        assert result in STAGES
