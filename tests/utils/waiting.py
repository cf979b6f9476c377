"""Waits that follow progress: they fail when nothing has moved for a while, not at a fixed deadline.

On a loaded machine (two cores shared with other test runs) a cluster, a flow run or a dispatcher may take much
longer than on a quiet one, but it keeps moving; a wait that gives up at a fixed deadline fails such a run for
nothing, and one with a deadline long enough for every load hides a real hang for minutes. These waits look at
an observable snapshot of the work (states, counts) and fail only when it stays the same for `stall` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Stalled(AssertionError):
    """Nothing moved for the allowed time."""


class Progress:
    """Watches successive snapshots of some work; `seen` raises `Stalled` when they stop changing.

        progress = Progress(stall=60, what="dispatch during the outage")
        while total["sent"] < 120:
            total.update(dispatch_all(app))
            progress.seen(dict(total))
    """

    def __init__(self, stall: float, what: str = "the work", *, clock: Callable[[], float] = time.monotonic):
        self.stall = stall
        self.what = what
        self.clock = clock
        self.last: Any = _NOTHING
        self.moved_at = clock()

    def seen(self, snapshot: Any) -> bool:
        """Record a snapshot; True when it differs from the previous one. Raises `Stalled` when it has not
        changed for more than `stall` seconds."""
        now = self.clock()
        if snapshot != self.last:
            self.last, self.moved_at = snapshot, now
            return True
        if now - self.moved_at > self.stall:
            raise Stalled(f"{self.what}: nothing moved for {self.stall:g} s; last seen: {snapshot!r}")
        return False


_NOTHING = object()


def wait_until(probe: Callable[[], T], done: Callable[[T], bool] = bool, *, stall: float,
               what: str = "the work", interval: float = 0.2, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> T:
    """Call `probe` every `interval` seconds until `done(snapshot)`; returns that snapshot.

    The snapshot is what shows progress (states of runs, counts of messages...): the wait fails with `Stalled`
    when it stays the same for `stall` seconds, however long the whole wait has taken.
    """
    progress = Progress(stall, what, clock=clock)
    while True:
        snapshot = probe()
        if done(snapshot):
            return snapshot
        progress.seen(snapshot)
        sleep(interval)
