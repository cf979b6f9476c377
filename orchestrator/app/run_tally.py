"""The plan run's tally per campaign, filled while `orchestrator.app.planning` works, for the run's report.

A flow opens a tally (`plan_tally()`), the planning services note each decision (`note_plan`,
`note_followups`), and the flow reads the counts by (campaign id, outcome) afterwards. A decision counts
only once its transaction commits: when planning isolates a failing campaign it runs the work again on
rolled-back transactions, and those attempts must not count. Without an open tally the notes cost nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event

from orchestrator.core.run_reports import tally_followups, tally_plan

_TALLY: ContextVar[Counter | None] = ContextVar("declic_plan_tally", default=None)


@contextmanager
def plan_tally() -> Iterator[Counter]:
    """Counts by (campaign id, outcome) of the planning done inside the block (this thread's context)."""
    tally: Counter = Counter()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def _on_commit(conn: Any, pending: Counter) -> None:
    tally = _TALLY.get()
    if tally is None or not pending:
        return
    event.listen(conn, "commit", lambda _conn: tally.update(pending), once=True)


def note_plan(conn: Any, decided: Any) -> None:
    """Note a planner decision (enrolled, held out, skipped by reason) per campaign, counted on commit."""
    if _TALLY.get() is not None:
        pending: Counter = Counter()
        tally_plan(pending, decided)
        _on_commit(conn, pending)


def note_followups(conn: Any, decisions: Iterable[Any]) -> None:
    """Note later-step decisions per campaign, counted on commit."""
    if _TALLY.get() is not None:
        pending: Counter = Counter()
        tally_followups(pending, decisions)
        _on_commit(conn, pending)
