"""Properties of the pure planner (hypothesis): bounded, inside windows and holidays, reproducible arms."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.planner import (
    AmbassadorView,
    BusinessView,
    CampaignRule,
    Candidate,
    Policy,
    arm_for,
    moment_arm,
    moment_parts,
    plan,
)
from orchestrator.core.windows import is_french_holiday, place_of, window_for
from tests.utils.factories import campaign_spec

PARIS = ZoneInfo("Europe/Paris")  # the deployment's zone
# Places with their own holidays or time zone: metropolitan, Moselle, Bas-Rhin, La Réunion, Guyane.
PLACES = [("35238", "243500139", "35", "53"), ("57463", "200039865", "57", "44"), ("67482", "246700488", "67", "44"),
          ("97411", "249740119", "974", "04"), ("97302", "249730052", "973", "03")]
FAMILIES = ["batiment", "alimentation", "hotellerie_restauration", "commerce_detail", "sante", "services_entreprises"]
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def spec(holdout: float = 0, caps=()) -> CampaignSpec:
    return CampaignSpec.model_validate(campaign_spec(
        owner={"name": "État", "territory": {"departements": ["35", "57", "67", "974", "973"]}},
        segment={"families": FAMILIES}, holdout=holdout,
        pressure={"caps": [{"messages": n, "days": d} for n, d in caps], "max_defer": "20d"}))


@st.composite
def businesses(draw, business_id: int) -> BusinessView:
    commune, epci, dep, region = draw(st.sampled_from(PLACES))
    return BusinessView(
        id=business_id, siret=f"{business_id:014d}", name=None, metier="métier", family=draw(st.sampled_from(FAMILIES)),
        family_label="Famille", commune_code=commune, commune_nom=None, epci_code=epci, departement_code=dep,
        region_code=region, postal_code=None, state=draw(st.sampled_from(["active"] * 9 + ["closed"])),
        do_not_contact=draw(st.booleans()) and draw(st.booleans()) and draw(st.booleans()),
        email=draw(st.sampled_from([None, f"b{business_id}@x.fr"])),
        phone=draw(st.sampled_from([None, "+33600000000"])),
        postal=draw(st.sampled_from([None, "adresse"])), phone_consent=draw(st.booleans()))


@st.composite
def scenarios(draw):
    n = draw(st.integers(1, 25))
    views = [draw(businesses(i + 1)) for i in range(n)]
    candidates = []
    for b in views:
        for _ in range(draw(st.integers(1, 2))):  # some businesses get two events: one enrollment only
            candidates.append(Candidate(len(candidates) + 1, "creation", dt.date(2026, 11, 20), b))
    offset = draw(st.integers(0, 4 * 365 * 24))
    now = START + dt.timedelta(hours=offset)
    history = {}
    for b in views:
        times = draw(st.lists(st.integers(-40 * 24, 40 * 24), max_size=3))
        if times:
            history[b.id] = [(99, now + dt.timedelta(hours=h)) for h in times]
    ambassadors = [AmbassadorView(i, f"amb{i}", None, "+33611111111", None, None,
                                  frozenset([fam, "*"][i % 2:i % 2 + 1]),
                                  frozenset(), frozenset([PLACES[i % 5][1]]), frozenset([PLACES[i % 5][2]]),
                                  draw(st.integers(0, 3)))
                   for i, fam in enumerate(draw(st.lists(st.sampled_from(FAMILIES), max_size=6)))]
    holdout = draw(st.sampled_from([0, 10, 50]))
    caps = draw(st.sampled_from([(), ((1, 14),)]))
    return candidates, now, history, ambassadors, holdout, caps


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_planner_properties(scenario):
    candidates, now, history, ambassadors, holdout, caps = scenario
    rule = CampaignRule(7, 1, spec(holdout, caps))
    policy = Policy(((1, 7), (3, 30)))
    result = plan(candidates, [rule], now=now, zone=PARIS, enrolled=set(), suppressed=set(), history=history,
                  policy=policy, ambassadors=ambassadors)

    # Every business is accounted for: enrolled (treatment or holdout) or skipped with a reason.
    seen = {e.business_id for e in result.enrollments} | {s.business_id for s in result.skipped}
    assert seen == {c.business.id for c in candidates}
    # Enrolled once per trigger.
    assert len({(e.business_id, e.trigger_key) for e in result.enrollments}) == len(result.enrollments)

    new_times: dict[int, list[dt.datetime]] = {}
    by_event = {c.event_id: c for c in candidates}
    for e in result.enrollments:
        # Arms are a function of (business, moment), shared by every campaign: the same on every run.
        assert e.arm == moment_arm(e.business_id, *moment_parts(by_event[e.event_id]), holdout)
        if e.arm == "holdout":
            assert e.messages == ()  # never contacted
            continue
        for m in e.messages:
            new_times.setdefault(e.business_id, []).append(m.due_at)
    views = {c.business.id: c.business for c in candidates}
    for business_id, times in new_times.items():
        b = views[business_id]
        place = place_of(b.departement_code)
        window = window_for(b.family)
        everything = [t for _, t in history.get(business_id, [])] + times
        for t in times:
            local = t.astimezone(ZoneInfo(place.timezone))
            # Inside the trade's window, on a working day that is not a holiday of the business's place.
            assert window.allows(local, lambda d, p=place: is_french_holiday(d, p.subdivision)), (b, local)
            assert 7 <= local.hour < 21
            assert t >= now
            # Never over a cap: global (1 in 7 days, 3 in 30) and the campaign's own.
            others = [u for u in everything if u is not t]
            assert sum(abs(u - t) < dt.timedelta(days=7) for u in others) < 1
            assert sum(abs(u - t) < dt.timedelta(days=30) for u in others) < 3
            for n, d in caps:
                assert sum(abs(u - t) < dt.timedelta(days=d) for u in times if u is not t) < n

    # Ambassador capacity is never exceeded; a treatment enrollment without one is a recorded gap.
    used = Counter(e.ambassador_id for e in result.enrollments if e.ambassador_id is not None)
    for a in ambassadors:
        assert used[a.id] <= a.remaining
    treated = [e for e in result.enrollments if e.arm == "treatment"]
    assert result.ambassador_gaps == sum(1 for e in treated if e.ambassador_id is None)
    for e in treated:
        ctx = e.messages[0].context
        assert ctx["ambassador"]["name"]  # never empty: the campaign's contact stands in
        assert ctx["meta"]["ambassador_gap"] == (e.ambassador_id is None)

    # Rerun: same decisions.
    again = plan(candidates, [rule], now=now, zone=PARIS, enrolled=set(), suppressed=set(), history=history,
                 policy=policy, ambassadors=ambassadors)
    assert [(e.business_id, e.arm, [m.due_at for m in e.messages]) for e in again.enrollments] == \
        [(e.business_id, e.arm, [m.due_at for m in e.messages]) for e in result.enrollments]


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 10**9), st.integers(1, 10**9))
def test_holdout_share_is_stable_and_close_to_the_percentage(campaign_id, start):
    arms = [arm_for(campaign_id, start + i, 20) for i in range(2000)]
    assert arms == [arm_for(campaign_id, start + i, 20) for i in range(2000)]
    assert 0.15 < arms.count("holdout") / 2000 < 0.25
