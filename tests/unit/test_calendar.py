"""The regulatory calendar: shipped deadlines, due offsets and one event per reminder and business."""

from __future__ import annotations

import datetime as dt

import pytest

from triggers.calendar import (
    DEFAULT_OFFSETS,
    CalendarError,
    Deadline,
    concerns,
    deadline_events,
    due_offsets,
    load_deadlines,
    size_of,
)

D = dt.date


SEPT_2027 = D(2027, 9, 1)


def deadline(ident: str = "x", day: dt.date = SEPT_2027, sizes=("micro", "pme")) -> Deadline:
    return Deadline(ident, day, "t", "s", frozenset(sizes), ("src",))


def test_shipped_file_has_the_e_invoicing_deadlines_with_sources():
    deadlines = {d.id: d for d in load_deadlines()}
    reception = deadlines["einvoicing-reception-2026"]
    # GE and ETI receive and issue in 2026 (their own deadline); PME and micro receive in 2026, issue in 2027.
    assert reception.date == D(2026, 9, 1) and reception.sizes == {"micro", "pme"}
    assert deadlines["einvoicing-issuing-large-2026"].sizes == {"eti", "ge"}
    issuing = deadlines["einvoicing-issuing-2027"]
    assert issuing.date == D(2027, 9, 1) and issuing.sizes == {"micro", "pme"}
    assert all(d.sources for d in deadlines.values())


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (D(2026, 12, 4), None),  # 271 days before
        (D(2026, 12, 5), 270),  # exactly 270 days before
        (D(2027, 3, 4), 270),
        (D(2027, 3, 5), 180),
        (D(2027, 6, 3), 90),
        (D(2027, 6, 10), 90),  # between offsets: the latest crossed
        (D(2027, 8, 2), 30),
        (D(2027, 9, 1), 30),  # the day itself
        (D(2027, 9, 2), None),  # past
    ],
)
def test_latest_crossed_offset_is_due(today, expected):
    due = due_offsets([deadline()], DEFAULT_OFFSETS, today)
    assert [o for _d, o in due] == ([] if expected is None else [expected])


def test_several_deadlines_and_custom_offsets():
    a, b = deadline("a", D(2027, 1, 10)), deadline("b", D(2027, 3, 1))
    due = due_offsets([a, b], (60, 14), D(2027, 1, 1))
    assert [(d.id, o) for d, o in due] == [("a", 14), ("b", 60)]
    assert due_offsets([a, b], (14,), D(2027, 1, 1)) == [(a, 14)]


def test_size_classes_and_concerns():
    assert [size_of(t) for t in ("NN", "", None, "03", "11", "31", "32", "51", "52")] == [
        "micro",
        "micro",
        "micro",
        "micro",
        "pme",
        "pme",
        "eti",
        "eti",
        "ge",
    ]
    d = deadline(sizes=("micro",))
    assert concerns(d, "01") and not concerns(d, "12") and not concerns(d, "01", "closed")


def test_events_once_per_deadline_offset_and_business():
    d = deadline("einvoicing-issuing-2027")
    businesses = [
        ("73282932000074", "NN", "active"),
        ("55210055400013", "41", "active"),
        ("44306184100047", "01", "closed"),
    ]
    events = list(deadline_events([(d, 90)], businesses))
    [event] = events
    assert event.external_id == "deadline:einvoicing-issuing-2027:90:73282932000074"
    assert event.type == "deadline" and event.source == "calendar"
    assert event.occurred_on == D(2027, 6, 3)
    assert event.payload["offset_days"] == 90 and event.payload["deadline_date"] == "2027-09-01"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("deadlines: 3", "list"),
        ("deadlines:\n  - {id: a, date: 2027-13-01, concerns: {sizes: [micro]}, sources: [s]}", "date"),
        (
            "deadlines:\n  - {id: a, date: 2027-01-01, concerns: {sizes: [huge]}, sources: [s]}",
            "unknown size",
        ),
        ("deadlines:\n  - {id: a, date: 2027-01-01, concerns: {sizes: [tpe]}}", "source"),
        ("deadlines:\n  - {id: 'a:b', date: 2027-01-01, concerns: {sizes: [tpe]}, sources: [s]}", "id"),
        (
            "deadlines:\n  - {id: a, date: 2027-01-01, concerns: {sizes: [tpe]}, sources: [s]}\n"
            "  - {id: a, date: 2027-01-02, concerns: {sizes: [tpe]}, sources: [s]}",
            "duplicate",
        ),
    ],
)
def test_malformed_files_are_refused_with_the_entry_named(tmp_path, text, message):
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(CalendarError, match=message):
        load_deadlines(path)


def test_tpe_alias_means_micro(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("deadlines:\n  - {id: a, date: 2027-01-01, concerns: {sizes: [TPE, pme]}, sources: [s]}")
    [d] = load_deadlines(path)
    assert d.sizes == {"micro", "pme"}
