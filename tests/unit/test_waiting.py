"""The progress-following waits of tests/utils/waiting.py, on a fake clock."""

from __future__ import annotations

import pytest

from tests.utils.waiting import Progress, Stalled, wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_slow_wait_that_keeps_moving_is_never_cut_short():
    clock = FakeClock()
    steps = iter(range(1000))
    # 1,000 probes, 5 s apart (5,000 s in all), each one a little further: a fixed deadline would have failed.
    assert wait_until(lambda: next(steps), lambda n: n == 999, stall=10, interval=5, clock=clock,
                      sleep=clock.sleep) == 999
    assert clock.now == 999 * 5


def test_a_wait_where_nothing_moves_fails_after_the_stall_and_says_what_it_saw():
    clock = FakeClock()
    with pytest.raises(Stalled, match=r"plan run: nothing moved for 30 s; last seen: 'SCHEDULED'"):
        wait_until(lambda: "SCHEDULED", lambda s: s == "COMPLETED", stall=30, what="plan run", interval=1,
                   clock=clock, sleep=clock.sleep)
    assert 30 < clock.now <= 32


def test_progress_counts_the_stall_from_the_last_change():
    clock = FakeClock()
    progress = Progress(stall=10, clock=clock)
    assert progress.seen(1) is True
    clock.now = 9
    assert progress.seen(1) is False
    clock.now = 15
    assert progress.seen(2) is True  # moved: the stall starts again
    clock.now = 24
    assert progress.seen(2) is False
    clock.now = 26
    with pytest.raises(Stalled):
        progress.seen(2)
