"""Overlapping campaigns of nested territories (issue 20), properties of the pure planner (hypothesis).

For any set of campaigns on nested and overlapping territories (commune, EPCI, département, région), with
holdouts, priorities and a territory's global control group, and any stored owners of earlier moments:
each (business, trigger event) gets at most one treatment enrollment, each moment one owner, and no business
in a control group for a moment is planned any message for that moment.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.planner import (
    BusinessView,
    CampaignRule,
    Candidate,
    GlobalHoldout,
    arbitration_key,
    covered_reason,
    global_control,
    locality,
    moment_arm,
    moment_of,
    moment_parts,
    plan,
)
from tests.utils.factories import campaign_spec

PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone
# (commune, EPCI, département, région): Rennes and Betton in Rennes Métropole, Saint-Malo elsewhere in 35,
# Brest in the Finistère, all in Bretagne.
PLACES = [("35238", "243500139", "35", "53"), ("35024", "243500139", "35", "53"),
          ("35288", "243500782", "35", "53"), ("29019", "242900314", "29", "53")]
OWNERS = [
    ("Ville de Rennes", {"communes": ["35238"]}),
    ("Rennes Métropole", {"epci": ["243500139"]}),
    ("Saint-Malo Agglomération", {"epci": ["243500782"]}),
    ("Département d'Ille-et-Vilaine", {"departements": ["35"]}),
    ("Département du Finistère", {"departements": ["29"]}),
    ("Région Bretagne", {"regions": ["53"]}),
]
FAMILIES = ["batiment", "alimentation"]
NOW = dt.datetime(2026, 11, 23, 9, tzinfo=dt.UTC)


@st.composite
def campaigns(draw) -> list[CampaignRule]:
    rules = []
    for i in range(draw(st.integers(1, 5))):
        owner_name, territory = draw(st.sampled_from(OWNERS))
        spec = CampaignSpec.model_validate(campaign_spec(
            name=f"campagne-{i}", families=draw(st.sampled_from([FAMILIES, FAMILIES[:1], FAMILIES[1:]])),
            owner={"name": owner_name, "territory": territory},
            triggers=draw(st.sampled_from([["creation"], ["creation", "first_hire"], ["first_hire"]])),
            holdout=draw(st.sampled_from([0, 10, 20, 50])),
            priority=draw(st.sampled_from([None, None, 1, 5])),
            pressure={"max_defer": "60d"}))
        rules.append(CampaignRule(i + 1, 1, spec))
    return rules


@st.composite
def scenarios(draw):
    rules = draw(campaigns())
    candidates, views = [], []
    for i in range(draw(st.integers(1, 30))):
        commune, epci, dep, region = draw(st.sampled_from(PLACES))
        b = BusinessView(i + 1, f"{i + 1:014d}", None, "métier", draw(st.sampled_from(FAMILIES)), "Famille",
                         commune, None, epci, dep, region, None, "active", False,
                         draw(st.sampled_from([f"b{i}@x.fr", None])), None, None)
        views.append(b)
        for _ in range(draw(st.integers(1, 3))):  # the same moment told by several sources, or another one
            kind = draw(st.sampled_from(["creation", "first_hire"]))
            day = draw(st.sampled_from([dt.date(2026, 11, 20), dt.date(2026, 11, 2), dt.date(2025, 12, 30)]))
            candidates.append(Candidate(len(candidates) + 1, kind, day, b))
    # Moments already owned by a stored enrollment of some campaign (or of one that ended since: id 99).
    moments = {}
    for c in candidates:
        if draw(st.integers(0, 5)) == 0:
            moments[(c.business.id, moment_of(c))] = (draw(st.sampled_from([r.id for r in rules] + [99])),
                                                      draw(st.sampled_from(["treatment", "holdout"])))
    holdouts = draw(st.sampled_from([(), (GlobalHoldout("departement", "35", 10),),
                                     (GlobalHoldout("epci", "243500139", 30), GlobalHoldout("region", "53", 5))]))
    return rules, candidates, moments, holdouts


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_one_voice_and_clean_control_groups(scenario):
    rules, candidates, moments, holdouts = scenario
    result = plan(candidates, rules, now=NOW, zone=PARIS, enrolled=set(), suppressed=set(), moments=moments,
                  global_holdouts=holdouts)
    by_event = {c.event_id: c for c in candidates}

    # Each (business, trigger event) has at most one treatment enrollment, each moment at most one owner.
    treated = Counter((e.business_id, e.event_id) for e in result.enrollments if e.arm == "treatment")
    assert all(n == 1 for n in treated.values())
    owners = defaultdict(set)
    for e in result.enrollments:
        assert e.moment == moment_of(by_event[e.event_id])
        owners[(e.business_id, e.moment)].add(e.campaign_id)
    assert all(len(campaign_ids) == 1 for campaign_ids in owners.values())
    # A moment owned by a stored enrollment is never enrolled again by another campaign.
    for key, campaign_ids in owners.items():
        if key in moments:
            assert campaign_ids == {moments[key][0]}

    # Control groups for a moment (a holdout now or stored, a territory's global control) get no message for it.
    control = {(e.business_id, e.moment) for e in result.enrollments if e.arm == "holdout"}
    control |= {key for key, (_, arm) in moments.items() if arm == "holdout"}
    control |= {(c.business_id, c.moment) for c in result.covered if c.kind == "global"}
    for e in result.enrollments:
        if e.messages:
            assert (e.business_id, e.moment) not in control
    # The global control group is the same draw whichever campaign meets the business, and is never enrolled.
    for e in result.enrollments:
        b = by_event[e.event_id].business
        assert global_control(b, holdouts, 2026) is None
        # Arms come from the business and its moment, whichever campaign enrols it.
        spec = next(r.spec for r in rules if r.id == e.campaign_id)
        assert e.arm == moment_arm(e.business_id, *moment_parts(by_event[e.event_id]), spec.holdout)

    # A covered business names the campaign that owns the moment: stored, or earlier in the arbitration order.
    keys = {r.id: arbitration_key(r) for r in rules}
    planned_owner = {(e.business_id, e.moment): e.campaign_id for e in result.enrollments}
    for cov in result.covered:
        if cov.kind != "covered":
            continue
        owner = planned_owner.get((cov.business_id, cov.moment)) or moments[(cov.business_id, cov.moment)][0]
        assert cov.covered_by == owner != cov.campaign_id
        if (cov.business_id, cov.moment) not in moments:
            assert keys[owner] < keys[cov.campaign_id]
        assert cov.reason.startswith("déjà accompagnée par ")
    # Every covered or globally held business is also a skip with its reason (the run reports count them).
    skips = Counter((s.campaign_id, s.event_id, s.reason) for s in result.skipped)
    for cov in result.covered:
        assert skips[(cov.campaign_id, cov.event_id, "covered" if cov.kind == "covered" else "global_holdout")]


def _rule(i: int, owner: tuple[str, dict], priority: int | None = None, holdout: float = 20) -> CampaignRule:
    return CampaignRule(i, 1, CampaignSpec.model_validate(campaign_spec(
        name=f"campagne-{i}", owner={"name": owner[0], "territory": owner[1]}, priority=priority,
        holdout=holdout)))


def _rennes(i: int) -> Candidate:
    b = BusinessView(i, f"{i:014d}", None, "plombier", "batiment", "Bâtiment", "35238", "Rennes", "243500139",
                     "35", "53", None, "active", False, f"b{i}@x.fr", None, None)
    return Candidate(i, "creation", dt.date(2026, 11, 20), b)


def test_the_issue_example_one_welcome_and_one_control_group():
    """120 building-trade creations in Rennes, a Département and a Rennes Métropole campaign (20 % control
    each): every business hears one voice, the most local one, and no control business is contacted."""
    departement, metropole = _rule(1, OWNERS[3]), _rule(2, OWNERS[1])
    result = plan([_rennes(i) for i in range(1, 121)], [departement, metropole], now=NOW, zone=PARIS, enrolled=set(),
                  suppressed=set())
    assert {e.campaign_id for e in result.enrollments} == {2}
    assert len(result.enrollments) == 120
    assert len(result.covered) == 120
    assert {c.reason for c in result.covered} == {"déjà accompagnée par Rennes Métropole"}
    held = {e.business_id for e in result.enrollments if e.arm == "holdout"}
    assert 10 < len(held) < 40
    assert all(not e.messages for e in result.enrollments if e.business_id in held)


def test_priority_then_locality_then_age():
    region, commune = _rule(3, OWNERS[5]), _rule(4, OWNERS[0])
    assert [locality(r.spec) for r in (commune, _rule(5, OWNERS[1]), _rule(6, OWNERS[3]), region)] == [0, 1, 2, 3]
    assert sorted([region, commune], key=arbitration_key) == [commune, region]
    loud_region = _rule(3, OWNERS[5], priority=10)
    assert sorted([commune, loud_region], key=arbitration_key) == [loud_region, commune]
    older, newer = _rule(7, OWNERS[3]), _rule(8, OWNERS[3])
    assert sorted([newer, older], key=arbitration_key) == [older, newer]
    result = plan([_rennes(1)], [commune, loud_region], now=NOW, zone=PARIS, enrolled=set(), suppressed=set())
    assert [e.campaign_id for e in result.enrollments] == [3]
    assert [(c.campaign_id, c.covered_by) for c in result.covered] == [(4, 3)]
    assert covered_reason(None) == "déjà accompagnée par une autre campagne"


def test_co_signed_campaign_names_both_and_covers_both_territories():
    spec = CampaignSpec.model_validate(campaign_spec(
        name="ensemble", owner={"name": "Département d'Ille-et-Vilaine", "territory": {"departements": ["35"]}},
        co_owners=[{"name": "Rennes Métropole", "territory": {"epci": ["243500139"]}}]))
    assert spec.signed_by() == "Département d'Ille-et-Vilaine et Rennes Métropole"
    result = plan([_rennes(1)], [CampaignRule(1, 1, spec)], now=NOW, zone=PARIS, enrolled=set(), suppressed=set())
    context = result.enrollments[0].messages[0].context  # no control group: contacted
    assert context["campaign"]["signed_by"] == "Département d'Ille-et-Vilaine et Rennes Métropole"
    assert context["campaign"]["owners"] == ["Département d'Ille-et-Vilaine", "Rennes Métropole"]
    # Every message and the landing page name both: the sender line carries the co-owner.
    assert context["sender"]["name"] == "Département d'Ille-et-Vilaine et Rennes Métropole"
