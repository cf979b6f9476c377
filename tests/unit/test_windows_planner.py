"""The pure planner and send windows: no I/O."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.planner import BusinessView, CampaignRule, Candidate, matches, plan
from orchestrator.core.windows import DEFAULT_WINDOW, is_french_holiday, next_slot
from tests.utils.factories import campaign_spec

PARIS = ZoneInfo("Europe/Paris")


def business(**kw) -> BusinessView:
    base = dict(id=1, siret="73282932000074", name="Plomberie Durand", metier="plombier-chauffagiste",
                family="batiment", family_label="Bâtiment", commune_code="35238", commune_nom="Rennes",
                epci_code="243500139", departement_code="35", region_code="53", postal_code="35000",
                state="active", do_not_contact=False, email="patron@exemple.fr", phone=None, postal=None)
    base.update(kw)
    return BusinessView(**base)


def rule(**overrides) -> CampaignRule:
    return CampaignRule(1, 1, CampaignSpec.model_validate(campaign_spec(**overrides)))


def test_slot_inside_window_is_kept():
    earliest = dt.datetime(2026, 12, 1, 10, 30, tzinfo=PARIS)  # a Tuesday
    assert next_slot(earliest) == earliest.astimezone(dt.UTC)


def test_lunch_break_moves_to_afternoon():
    slot = next_slot(dt.datetime(2026, 12, 1, 12, 15, tzinfo=PARIS)).astimezone(PARIS)
    assert (slot.hour, slot.minute) == (14, 0)


def test_christmas_and_weekend_are_skipped():
    slot = next_slot(dt.datetime(2026, 12, 24, 19, 0, tzinfo=PARIS)).astimezone(PARIS)
    assert slot.date() == dt.date(2026, 12, 28)  # 25 Dec holiday (Friday), then the weekend
    assert slot.hour == 9


def test_may_day_is_skipped():
    slot = next_slot(dt.datetime(2026, 5, 1, 8, 0, tzinfo=PARIS)).astimezone(PARIS)
    assert slot.date() != dt.date(2026, 5, 1)
    assert slot.date() == dt.date(2026, 5, 4)  # 1 May 2026 is a Friday


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2030, 12, 31)))
def test_planner_never_schedules_outside_the_window(naive):
    slot = next_slot(naive.replace(tzinfo=dt.UTC)).astimezone(PARIS)
    assert DEFAULT_WINDOW.allows(slot, is_french_holiday)
    assert (slot.month, slot.day) not in ((12, 25), (5, 1))


def test_segment_matches_and_rejects():
    spec = rule().spec
    assert matches(spec, "creation", business())
    assert not matches(spec, "first_hire", business())  # trigger not in the campaign
    assert not matches(spec, "creation", business(family="alimentation"))  # family not in the segment
    assert not matches(spec, "creation", business(departement_code="29", commune_code="29019",
                                                  epci_code="242900314", region_code="53"))  # outside territory


def test_plan_explains_every_business_left_out():
    now = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    candidates = [
        Candidate(1, "creation", dt.date(2026, 11, 28), business(id=1)),
        Candidate(2, "creation", dt.date(2026, 11, 28), business(id=2, email=None)),
        Candidate(3, "creation", dt.date(2026, 11, 28), business(id=3, do_not_contact=True)),
        Candidate(4, "creation", dt.date(2026, 11, 28), business(id=4, state="closed")),
        Candidate(5, "creation", dt.date(2026, 11, 28), business(id=5, email="parti@exemple.fr")),
        Candidate(6, "creation", dt.date(2026, 11, 28), business(id=6)),
    ]
    result = plan(candidates, [rule()], now=now, zone=PARIS, enrolled={(1, 6, "creation")},
                  suppressed={("email", "parti@exemple.fr")})
    assert [e.business_id for e in result.enrollments] == [1]
    assert {s.business_id: s.reason for s in result.skipped} == {
        2: "no_channel", 3: "not_to_contact", 4: "closed", 5: "opted_out", 6: "already_enrolled"}
    message = result.enrollments[0].messages[0]
    assert message.context["business"]["metier"] == "plombier-chauffagiste"
    assert DEFAULT_WINDOW.allows(message.due_at.astimezone(PARIS), is_french_holiday)


def test_same_business_twice_in_one_batch_is_enrolled_once():
    now = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)
    twice = [Candidate(1, "creation", dt.date(2026, 11, 28), business()),
             Candidate(2, "creation", dt.date(2026, 11, 28), business())]
    result = plan(twice, [rule()], now=now, zone=PARIS, enrolled=set(), suppressed=set())
    assert len(result.enrollments) == 1
    assert [s.reason for s in result.skipped] == ["already_enrolled"]


def test_campaign_outside_owner_territory_is_refused():
    import pytest
    from pydantic import ValidationError

    spec = campaign_spec(segment={"families": ["batiment"], "territory": {"departements": ["29"]}})
    with pytest.raises(ValidationError, match="sort du territoire"):
        CampaignSpec.model_validate(spec)
