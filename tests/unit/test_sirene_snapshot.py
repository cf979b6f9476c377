"""The snapshot comparison: which events two states of one establishment mean."""

from __future__ import annotations

import datetime as dt

from triggers.model import BusinessFacts
from triggers.sirene import KnownState, SnapshotRules, compare, state_of

TODAY = dt.date(2026, 11, 27)
RULES = SnapshotRules(today=TODAY, creation_window_days=90)
SIRET = "73282932000074"


def facts(**kw) -> BusinessFacts:
    base = {
        "siret": SIRET,
        "naf_code": "43.22A",
        "tranche_effectifs": "NN",
        "employer": False,
        "creation_date": dt.date(2015, 3, 2),
        "state": "active",
        "do_not_contact": False,
    }
    base.update(kw)
    return BusinessFacts(**base)


def before(**kw) -> KnownState:
    return state_of(facts(**kw))


def types(events) -> list[str]:
    return [e.type for e in events]


def test_no_change_no_event():
    assert compare(before(), facts(), RULES) == []


def test_new_recent_establishment_is_a_creation():
    created = TODAY - dt.timedelta(days=20)
    [event] = compare(None, facts(creation_date=created), RULES)
    assert (event.type, event.occurred_on, event.source) == ("creation", created, "sirene")
    assert event.external_id == f"creation:{SIRET}"
    assert event.siret == SIRET and event.siren == SIRET[:9]


def test_old_or_future_or_closed_new_establishment_is_no_creation():
    assert compare(None, facts(creation_date=TODAY - dt.timedelta(days=91)), RULES) == []
    assert compare(None, facts(creation_date=TODAY + dt.timedelta(days=3)), RULES) == []
    assert compare(None, facts(creation_date=TODAY, state="closed"), RULES) == []
    assert compare(None, facts(creation_date=None), RULES) == []


def test_window_is_configurable():
    created = TODAY - dt.timedelta(days=150)
    assert compare(None, facts(creation_date=created), RULES) == []
    wide = SnapshotRules(today=TODAY, creation_window_days=180)
    assert types(compare(None, facts(creation_date=created), wide)) == ["creation"]


def test_known_establishment_is_not_created_again():
    created = TODAY - dt.timedelta(days=10)
    assert compare(before(creation_date=created), facts(creation_date=created), RULES) == []


def test_first_hire_from_tranche_nn_to_01_03():
    for tranche in ("01", "02", "03"):
        [event] = compare(before(tranche_effectifs="NN"), facts(tranche_effectifs=tranche), RULES)
        assert event.type == "first_hire" and event.external_id == f"first_hire:{SIRET}"
        assert event.payload["tranche_before"] == "NN" and event.payload["tranche"] == tranche
    assert compare(before(tranche_effectifs="NN"), facts(tranche_effectifs="00"), RULES) == []
    assert compare(before(tranche_effectifs="01"), facts(tranche_effectifs="02"), RULES) == []


def test_first_hire_from_employer_n_to_o():
    [event] = compare(before(employer=False), facts(employer=True), RULES)
    assert event.type == "first_hire" and event.occurred_on == TODAY
    assert compare(before(employer=None), facts(employer=True), RULES) == []


def test_both_signals_make_one_first_hire():
    events = compare(
        before(tranche_effectifs="NN", employer=False), facts(tranche_effectifs="01", employer=True), RULES
    )
    assert types(events) == ["first_hire"]


def test_closure_from_a_to_f_dated_by_the_period_start():
    closed_on = dt.date(2026, 10, 31)
    [event] = compare(before(), facts(state="closed", state_since=closed_on), RULES)
    assert event.type == "closure" and event.occurred_on == closed_on
    assert event.external_id == f"closure:{SIRET}:2026-10-31"
    assert compare(before(state="closed"), facts(state="closed"), RULES) == []


def test_activity_change_on_naf_change():
    [event] = compare(
        before(naf_code="43.22A"), facts(naf_code="43.21A", state_since=dt.date(2026, 9, 1)), RULES
    )
    assert event.type == "activity_change"
    assert event.payload == {"naf_before": "43.22A", "naf": "43.21A"}
    assert event.external_id == f"activity_change:{SIRET}:43.21A:2026-09-01"
    assert compare(before(naf_code=None), facts(naf_code="43.21A"), RULES) == []


def test_unit_not_to_contact_only_yields_closure():
    recent = TODAY - dt.timedelta(days=5)
    assert compare(None, facts(do_not_contact=True, creation_date=recent), RULES) == []
    assert (
        compare(before(), facts(do_not_contact=True, tranche_effectifs="01", naf_code="47.11B"), RULES) == []
    )
    assert types(compare(before(), facts(do_not_contact=True, state="closed"), RULES)) == ["closure"]


def test_several_changes_at_once():
    events = compare(
        before(),
        facts(tranche_effectifs="02", employer=True, naf_code="43.21A"),
        RULES,
    )
    assert types(events) == ["first_hire", "activity_change"]


def test_same_input_same_external_ids():
    a = compare(before(), facts(state="closed", state_since=dt.date(2026, 1, 2)), RULES)
    b = compare(before(), facts(state="closed", state_since=dt.date(2026, 1, 2)), RULES)
    assert [e.external_id for e in a] == [e.external_id for e in b]
