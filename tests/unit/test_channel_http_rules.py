"""Pure HTTP rules shared by the SMS and webhook channels."""

from __future__ import annotations

import datetime as dt

import pytest

from integrations._http import Throttle, classify_status, parse_retry_after, pause_after
from orchestrator.core.outcomes import Outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SENT),
        (201, Outcome.SENT),
        (202, Outcome.SENT),
        (204, Outcome.SENT),
        (408, Outcome.TRANSIENT),
        (425, Outcome.TRANSIENT),
        (429, Outcome.TRANSIENT),
        (500, Outcome.TRANSIENT),
        (502, Outcome.TRANSIENT),
        (503, Outcome.TRANSIENT),
        (504, Outcome.TRANSIENT),
        (400, Outcome.PERMANENT),
        (401, Outcome.PERMANENT),
        (403, Outcome.PERMANENT),
        (404, Outcome.PERMANENT),
        (409, Outcome.PERMANENT),
        (422, Outcome.PERMANENT),
        (301, Outcome.PERMANENT),
    ],
)
def test_statuses_are_classified(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("Fri, 27 Nov 2026 09:01:30 GMT", now) == 90.0
    assert parse_retry_after("Fri, 27 Nov 2026 08:59:00 GMT", now) == 0.0  # already past
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None


class FakeTime:
    """A clock the test moves; sleeping moves it too."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_throttle_spaces_requests_at_the_rate() -> None:
    fake = FakeTime()
    throttle = Throttle(rate=4, clock=fake.clock, sleep=fake.sleep)
    for _ in range(5):
        throttle.wait_turn()
    assert fake.slept == [0.25, 0.25, 0.25, 0.25]


def test_throttle_without_a_rate_never_sleeps() -> None:
    fake = FakeTime()
    throttle = Throttle(clock=fake.clock, sleep=fake.sleep)
    for _ in range(100):
        throttle.wait_turn()
    assert fake.slept == []


def test_pauses_follow_what_the_peer_asked() -> None:
    fake = FakeTime()
    throttle = Throttle(clock=fake.clock, sleep=fake.sleep)
    pause_after(throttle, 503, None)  # a 503 without Retry-After: no pause
    assert throttle.paused_for() == 0
    pause_after(throttle, 429, None)  # a bare 429: a short pause anyway
    assert throttle.paused_for() == 1.0
    pause_after(throttle, 503, 30.0)
    assert throttle.paused_for() == 30.0
    pause_after(throttle, 429, 5.0)  # the longest pause asked wins
    assert throttle.paused_for() == 30.0
    fake.now += 31
    assert throttle.paused_for() == 0
    throttle.pause(10)
    throttle.resume()
    assert throttle.paused_for() == 0
