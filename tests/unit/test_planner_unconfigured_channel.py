"""A channel whose settings are missing (an SMS step without DECLIC_SMS_URL) is unavailable to the planner: the
step's fallback applies instead of a message retried forever (issue 19, point 7)."""

from __future__ import annotations

from orchestrator.app.bootstrap import unconfigured_channels
from orchestrator.app.settings import Settings
from orchestrator.core.planner import Policy, plan
from tests.unit.test_planner_journeys import NOW, PARIS, business, candidate, rule

SMS_THEN_EMAIL = [{"channel": "sms", "delay": "0d", "template": "creation", "fallback": ["email"]}]


def _first(policy: Policy, steps=SMS_THEN_EMAIL):
    result = plan([candidate(business())], [rule(steps=steps)], now=NOW, zone=PARIS, enrolled=set(), suppressed=set(),
                  policy=policy)
    return result.enrollments[0].messages[0] if result.enrollments else result.skipped[0].reason


def test_an_unconfigured_channel_falls_back():
    assert _first(Policy()).channel == "sms"
    assert _first(Policy(unavailable=frozenset({"sms"}))).channel == "email"
    only_sms = [dict(SMS_THEN_EMAIL[0], fallback=[])]
    assert _first(Policy(unavailable=frozenset({"sms"})), only_sms) == "no_channel"


def test_the_settings_say_which_channels_are_unconfigured(tmp_path):
    missing = unconfigured_channels(Settings(home=tmp_path, sms_url=None))
    assert "DECLIC_SMS_URL" in missing["sms"]
    assert "email" not in missing
    assert "sms" not in unconfigured_channels(Settings(home=tmp_path, sms_url="https://sms.exemple.fr/send"))
