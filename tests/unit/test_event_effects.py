"""What newly attached events change on their business, decided without the store (triggers.lifecycle)."""

from __future__ import annotations

import datetime as dt

from triggers.lifecycle import event_effects, stage_for, stage_windows

TODAY = dt.date(2026, 12, 1)


def test_the_latest_event_gives_the_stage_and_a_closure_stops_the_business() -> None:
    stages, closing = event_effects(
        [
            (1, "first_hire", TODAY - dt.timedelta(days=40)),
            (1, "takeover", "2026-11-20"),  # ISO text as the drivers return it
            (2, "closure", TODAY - dt.timedelta(days=3)),
            (3, "partner_note", TODAY),  # no stage of its own
            (4, "takeover", TODAY - dt.timedelta(days=400)),  # its window is over
        ],
        TODAY,
    )
    assert stages == {1: "transfer", 2: "closed"}
    assert closing == {2}


def test_an_older_event_read_later_does_not_take_the_stage_back() -> None:
    stages, _ = event_effects([(1, "takeover", TODAY - dt.timedelta(days=5)),
                               (1, "first_hire", TODAY - dt.timedelta(days=50))], TODAY)
    assert stages == {1: "transfer"}
    assert stage_for("first_hire", TODAY - dt.timedelta(days=50), TODAY) == "first_hires"


def test_stage_windows_age_each_event_stage_by_its_own_window() -> None:
    young_since, windows = stage_windows(TODAY)
    assert young_since == TODAY - dt.timedelta(days=1095)
    assert windows == [
        ("transfer", TODAY - dt.timedelta(days=365), ("takeover",)),
        ("critical_period", TODAY - dt.timedelta(days=365), ("critical_period",)),
        ("collective_procedure", TODAY - dt.timedelta(days=365), ("collective_procedure",)),
        ("first_hires", TODAY - dt.timedelta(days=730), ("first_hire",)),
    ]
