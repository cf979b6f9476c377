"""The planner's journey decisions, case by case: fallback, conditions, caps, windows by trade and place,
ambassadors and offers, variants."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.planner import (
    AmbassadorView,
    BusinessView,
    CampaignRule,
    Candidate,
    FollowUp,
    OfferView,
    pick_ambassador,
    pick_offers,
    plan,
    plan_followups,
)
from orchestrator.core.windows import holiday_subdivision, is_french_holiday, next_slot, place_of, window_for
from tests.utils.factories import campaign_spec

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC)  # Tuesday 09:00 in Paris


def business(**kw) -> BusinessView:
    base = dict(id=1, siret="73282932000074", name="Plomberie Durand", metier="plombier", family="batiment",
                family_label="Bâtiment", commune_code="35238", commune_nom="Rennes", epci_code="243500139",
                departement_code="35", region_code="53", postal_code="35000", state="active", do_not_contact=False,
                email="patron@exemple.fr", phone="+33612345678", postal="Plomberie\n1 rue\n35000 RENNES")
    base.update(kw)
    return BusinessView(**base)


def rule(**overrides) -> CampaignRule:
    return CampaignRule(1, 1, CampaignSpec.model_validate(campaign_spec(**overrides)))


def candidate(b=None, event_id=1) -> Candidate:
    return Candidate(event_id, "creation", dt.date(2026, 11, 30), b or business())


def first_message(result):
    return result.enrollments[0].messages[0]


def test_building_trades_get_early_morning_or_evening():
    m = first_message(plan([candidate()], [rule()], now=NOW, zone=PARIS, enrolled=set(), suppressed=set()))
    local = m.due_at.astimezone(PARIS)
    assert (local.date(), local.hour, local.minute) == (dt.date(2026, 12, 1), 17, 30)


def test_restaurants_between_services_and_campaign_may_override():
    m = first_message(plan([candidate(business(family="hotellerie_restauration"))],
                           [rule(families=["hotellerie_restauration"])], now=NOW, zone=PARIS, enrolled=set(),
                           suppressed=set()))
    assert m.due_at.astimezone(PARIS).hour == 15
    r = rule(timing={"windows": {"batiment": [["12:00", "13:00"]]}})
    m = first_message(plan([candidate()], [r], now=NOW, zone=PARIS, enrolled=set(), suppressed=set()))
    assert m.due_at.astimezone(PARIS).hour == 12


def test_weekends_only_when_the_campaign_says_so():
    saturday = dt.datetime(2026, 12, 5, 6, tzinfo=dt.UTC)
    m = first_message(plan([candidate()], [rule()], now=saturday, zone=PARIS, enrolled=set(), suppressed=set()))
    assert m.due_at.astimezone(PARIS).date() == dt.date(2026, 12, 7)
    m = first_message(plan([candidate()], [rule(timing={"weekends": True})], now=saturday, zone=PARIS, enrolled=set(),
                           suppressed=set()))
    assert m.due_at.astimezone(PARIS).date() == dt.date(2026, 12, 5)


def test_holidays_and_time_zone_of_the_place():
    # Good Friday 2027 (26 March) is a holiday in Moselle and Alsace only.
    friday = dt.datetime(2027, 3, 26, 5, tzinfo=dt.UTC)
    assert holiday_subdivision("57") == "57" and holiday_subdivision("67") == "6AE"
    metz = next_slot(friday, window_for("batiment"), "Europe/Paris", lambda d: is_french_holiday(d, "57"))
    rennes = next_slot(friday, window_for("batiment"), "Europe/Paris", lambda d: is_french_holiday(d, None))
    assert metz.astimezone(PARIS).date() == dt.date(2027, 3, 30)  # then the weekend and Easter Monday
    assert rennes.astimezone(PARIS).date() == dt.date(2027, 3, 26)
    # La Réunion: 20 December (abolition of slavery), and its own clock.
    reunion = business(commune_code="97411", epci_code="249740119", departement_code="974", region_code="04")
    r = rule(owner={"name": "Région Réunion", "territory": {"departements": ["974"]}})
    dec20 = dt.datetime(2027, 12, 20, 0, tzinfo=dt.UTC)  # a Monday
    m = first_message(plan([candidate(reunion)], [r], now=dec20, zone=PARIS, enrolled=set(), suppressed=set()))
    local = m.due_at.astimezone(ZoneInfo("Indian/Reunion"))
    assert local.date() == dt.date(2027, 12, 21) and local.hour == 7
    assert place_of("974").timezone == "Indian/Reunion"


def test_channel_fallback_email_then_sms_then_letter_then_call():
    r = rule()
    assert first_message(plan([candidate(business(email=None))], [r], now=NOW, zone=PARIS, enrolled=set(),
                              suppressed=set())).channel == "sms"
    assert first_message(plan([candidate(business(email=None, phone=None))], [r], now=NOW, zone=PARIS, enrolled=set(),
                              suppressed=set())).channel == "letter"
    no_postal = business(email=None, phone="+33612345678", postal=None)
    # SMS is there: it wins before a call; without consent, no call task is ever planned.
    assert first_message(plan([candidate(no_postal)], [r], now=NOW, zone=PARIS, enrolled=set(),
                              suppressed=set())).channel == "sms"
    opted = plan([candidate(no_postal)], [r], now=NOW, zone=PARIS, enrolled=set(),
                 suppressed={("phone", "+33612345678")})
    assert [s.reason for s in opted.skipped] == ["opted_out"]
    nothing = plan([candidate(business(email=None, phone=None, postal=None))], [r], now=NOW, zone=PARIS, enrolled=set(),
                   suppressed=set())
    assert [s.reason for s in nothing.skipped] == ["no_channel"]
    no_fallback = rule(steps=[{"channel": "email", "template": "creation", "fallback": []}])
    assert [s.reason for s in plan([candidate(business(email=None))], [no_fallback], now=NOW, zone=PARIS,
                                   enrolled=set(), suppressed=set()).skipped] == ["no_channel"]


def test_caps_defer_then_skip():
    history = {1: [(99, NOW - dt.timedelta(days=3))]}  # another owner's campaign wrote 3 days ago
    m = first_message(plan([candidate()], [rule()], now=NOW, zone=PARIS, enrolled=set(), suppressed=set(),
                           history=history))
    assert m.due_at >= NOW - dt.timedelta(days=3) + dt.timedelta(days=7)
    strict = rule(pressure={"max_defer": "1d"})
    result = plan([candidate()], [strict], now=NOW, zone=PARIS, enrolled=set(), suppressed=set(), history=history)
    assert [s.reason for s in result.skipped] == ["capped"] and not result.enrollments


def test_holdout_and_variants():
    r = rule(holdout=50, variants=[{"name": "a"}, {"name": "b"}])
    cands = [candidate(business(id=i, email=f"b{i}@x.fr"), i) for i in range(1, 201)]
    result = plan(cands, [r], now=NOW, zone=PARIS, enrolled=set(), suppressed=set())
    arms = [e.arm for e in result.enrollments]
    assert len(arms) == 200 and 70 < arms.count("holdout") < 130
    assert all(not e.messages for e in result.enrollments if e.arm == "holdout")
    assert sum(s.reason == "holdout" for s in result.skipped) == arms.count("holdout")
    variants = [e.variant for e in result.enrollments if e.arm == "treatment"]
    assert set(variants) == {"a", "b"}
    assert all(e.messages[0].variant == e.variant for e in result.enrollments if e.arm == "treatment")


def ambassador(id, families=("batiment",), epcis=(), deps=("35",), remaining=5):
    return AmbassadorView(id, f"Amb {id}", "plombier", "+33611111111", None, "Rennes", frozenset(families),
                          frozenset(), frozenset(epcis), frozenset(deps), remaining)


def test_ambassador_same_family_nearest_within_capacity():
    b = business()
    near = ambassador(1, epcis=("243500139",), remaining=1)
    far = ambassador(2, remaining=5)
    other_trade = ambassador(3, families=("alimentation",), epcis=("243500139",))
    assert pick_ambassador(b, [far, near, other_trade], {1: 1, 2: 5, 3: 5}).id == 1
    assert pick_ambassador(b, [far, near], {1: 0, 2: 5}).id == 2
    assert pick_ambassador(b, [other_trade], {3: 5}) is None
    cands = [candidate(business(id=i, email=f"b{i}@x.fr"), i) for i in range(1, 4)]
    result = plan(cands, [rule()], now=NOW, zone=PARIS, enrolled=set(), suppressed=set(), ambassadors=[near])
    assert [e.ambassador_id for e in result.enrollments] == [1, None, None]
    assert result.ambassador_gaps == 2
    gap = result.enrollments[1].messages[0].context
    assert gap["ambassador"]["name"] == "Claire Le Goff" and gap["meta"]["ambassador_gap"]
    assert result.enrollments[0].messages[0].context["meta"]["ambassador_id"] == 1


def offer(id, kind, families=(), deps=(), epcis=()):
    return OfferView(id, f"Offre {id}", "CMA", kind, "sur_place", "2 h", "9h-11h", "gratuit", frozenset(families),
                     epcis=frozenset(epcis), departements=frozenset(deps))


def test_at_most_two_offers_fitting_trade_and_place_of_different_kinds():
    b = business()
    offers = [offer(1, "diagnostic", deps=("35",)), offer(2, "diagnostic", epcis=("243500139",)),
              offer(3, "financement"), offer(4, "formation_courte", families=("alimentation",)),
              offer(5, "coaching", deps=("29",))]
    picked = pick_offers(b, "creation", offers)
    assert [o.id for o in picked] == [2, 3]
    assert pick_offers(b, "creation", []) == []
    m = first_message(plan([candidate()], [rule()], now=NOW, zone=PARIS, enrolled=set(), suppressed=set(),
                           offers=offers))
    assert [o["title"] for o in m.context["offers"]] == ["Offre 2", "Offre 3"]


def three_steps() -> CampaignRule:
    return rule(steps=[{"channel": "email", "delay": "0d", "template": "creation"},
                       {"channel": "email", "delay": "7d", "template": "creation", "if": "no_click"},
                       {"channel": "letter", "delay": "10d", "template": "creation"}])


def followup(step=1, sent=NOW, clicked=False, **kw) -> FollowUp:
    return FollowUp(10, 1, kw.pop("b", business()), step, sent, clicked, False, {"business": {}}, None)


def test_followups_wait_for_their_delay_and_condition():
    r = three_steps()
    assert plan_followups([followup()], [r], now=NOW + dt.timedelta(days=6), suppressed=set()) == []
    [d] = plan_followups([followup()], [r], now=NOW + dt.timedelta(days=7), suppressed=set())
    assert d.message is not None and d.message.step == 1
    assert d.message.due_at >= NOW + dt.timedelta(days=7)
    [d] = plan_followups([followup(clicked=True)], [r], now=NOW + dt.timedelta(days=8), suppressed=set())
    assert d.message is None and d.reason == "condition_not_met"
    # The caps count the previous step: a step due 7 days later than a send is exactly at the edge.
    [d] = plan_followups([followup()], [r], now=NOW + dt.timedelta(days=7), suppressed=set(),
                         history={1: [(1, NOW + dt.timedelta(days=5))]})
    assert d.message is None or d.message.due_at >= NOW + dt.timedelta(days=12)


def test_a_deadline_event_brings_its_date_to_the_template():
    from store.planning import deadline_of

    deadline = deadline_of("deadline", {"deadline": "einvoice-2027", "deadline_date": "2027-09-01",
                                        "title": "Réception des factures électroniques"})
    # the company's duty dates travel too (None when the event does not state them: the PME/micro dates)
    assert deadline == {"label": "Réception des factures électroniques", "date": "2027-09-01",
                        "receive_date": None, "issue_date": None}
    assert deadline_of("creation", {"deadline_date": "2027-09-01"}) is None
    c = Candidate(1, "deadline", dt.date(2026, 11, 30), business(), deadline=deadline)
    m = first_message(plan([c], [rule(triggers=["deadline"])], now=NOW, zone=PARIS, enrolled=set(), suppressed=set()))
    assert m.context["deadline"] == deadline
