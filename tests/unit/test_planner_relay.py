"""The planner's relay decisions (issue 16, point 1): a relay step goes to the business's intermediary, falls back
like any unreachable channel without one, and an intermediary's "je m'en occupe" stops later direct steps only."""

from __future__ import annotations

import datetime as dt

from orchestrator.core.planner import FollowUp, plan, plan_followups
from tests.unit.test_planner_journeys import NOW, PARIS, business, candidate, rule

STEPS = [{"channel": "relay", "delay": "0d", "template": "creation"},
         {"channel": "email", "delay": "3d", "template": "creation"},
         {"channel": "relay", "delay": "3d", "template": "creation"}]


def _first(b, **overrides):
    result = plan([candidate(b)], [rule(**{"steps": STEPS, **overrides})], now=NOW, zone=PARIS, enrolled=set(),
                  suppressed=set())
    return result.enrollments[0].messages[0] if result.enrollments else result.skipped[0].reason


def test_relay_step_goes_to_the_intermediary_else_falls_back():
    m = _first(business(relay="cabinet@durand.fr"))
    assert (m.channel, m.recipient) == ("relay", "cabinet@durand.fr")
    m = _first(business())
    assert (m.channel, m.recipient) == ("email", "patron@exemple.fr")  # no intermediary: e-mail -> SMS -> ...
    steps = [dict(STEPS[0], fallback=[])]
    assert _first(business(), steps=steps) == "no_channel"


def _followup(step: int, relayed: bool) -> FollowUp:
    return FollowUp(7, 1, business(relay="cabinet@durand.fr"), step, NOW - dt.timedelta(days=4), False, False,
                    {"business": {}}, None, relayed)


def test_taken_in_hand_stops_direct_steps_not_relay_ones():
    r = rule(steps=STEPS)
    later = NOW + dt.timedelta(hours=9)  # 18:00 in Paris: inside the building trades' evening window
    direct, = plan_followups([_followup(1, True)], [r], now=later, suppressed=set())
    assert direct.message is None and direct.reason == "relay_handled"
    relay, = plan_followups([_followup(2, True)], [r], now=later, suppressed=set())
    assert relay.message is not None and relay.message.recipient == "cabinet@durand.fr"
    untouched, = plan_followups([_followup(1, False)], [r], now=later, suppressed=set())
    assert untouched.message is not None and untouched.message.channel == "email"
