"""Life-cycle stage of a business (Tableau 2 of the study), derived from its events and its age.

Pure: `lifecycle_stage` takes the facts and returns one of `STAGES` (or None when nothing is known).
The ingest stores it on `Business.lifecycle_stage` so segments can select "first hires" or
"transfer" like any other column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

STAGES = ("creation", "first_hires", "consolidation", "critical_period", "collective_procedure", "transfer", "closed")

# How long an event keeps a business in its stage (days). Why these: the study's windows are "early"
# for creation and first hires (support is worth most in the first two or three years), while a
# procedure or a takeover is a one-year moment.
EVENT_STAGE = {
    "takeover": ("transfer", 365),
    "critical_period": ("critical_period", 365),
    # A safeguard or receivership judgment (BODACC) is its own stage, never `critical_period`: a segment on the
    # hard-period stage must not reach a business under a court procedure unless it names this stage.
    "collective_procedure": ("collective_procedure", 365),
    "first_hire": ("first_hires", 730),
}
CREATION_YEARS = 3


def lifecycle_stage(
    *,
    today: dt.date,
    creation_date: dt.date | None,
    state: str | None,
    events: Iterable[tuple[str, dt.date]] = (),
) -> str | None:
    """The stage: closed; else the most recent event still in its window; else by age.

    Age below three years is `creation`, above is `consolidation`; with no creation date and no
    event the stage is unknown (None).
    """
    if state == "closed":
        return "closed"
    latest: tuple[dt.date, str] | None = None
    for kind, on in events:
        if kind == "closure":
            return "closed"
        if kind == "creation" and creation_date is None:
            creation_date = on
        rule = EVENT_STAGE.get(kind)
        if rule is None:
            continue
        stage, days = rule
        if 0 <= (today - on).days <= days and (latest is None or on >= latest[0]):
            latest = (on, stage)
    if latest is not None:
        return latest[1]
    if creation_date is None:
        return None
    years = (today - creation_date).days / 365.25
    return "creation" if years < CREATION_YEARS else "consolidation"


def stage_for(event_type: str, on: dt.date, today: dt.date) -> str | None:
    """The stage one event gives on its own (None: this event sets no stage, or its window is over)."""
    return lifecycle_stage(today=today, creation_date=None, state=None, events=[(event_type, on)])


def event_effects(events: Iterable[tuple[int, str, Any]], today: dt.date) -> tuple[dict[int, str], set[int]]:
    """What newly attached events change on their businesses: the stage each business moves to (its latest
    event's), and the businesses a closure stops. Events are (business id, type, date or ISO text)."""
    stages: dict[int, tuple[dt.date, str]] = {}
    closing: set[int] = set()
    for business_id, kind, on in events:
        day = on if isinstance(on, dt.date) else dt.date.fromisoformat(str(on)[:10])
        if kind == "closure":
            closing.add(business_id)
        stage = stage_for(kind, day, today)
        if stage is not None and (business_id not in stages or day >= stages[business_id][0]):
            stages[business_id] = (day, stage)
    return {business_id: stage for business_id, (_day, stage) in stages.items()}, closing


def stage_windows(today: dt.date) -> tuple[dt.date, list[tuple[str, dt.date, tuple[str, ...]]]]:
    """What ageing a stored stage needs: the creation date from which a business is still young, and per
    event stage the date from which its events still hold it there (with the event types that set it)."""
    young_since = today - dt.timedelta(days=int(CREATION_YEARS * 365.25))
    kinds: dict[tuple[str, int], list[str]] = {}
    for kind, (stage, days) in EVENT_STAGE.items():
        kinds.setdefault((stage, days), []).append(kind)
    return young_since, [(stage, today - dt.timedelta(days=days), tuple(names))
                         for (stage, days), names in kinds.items()]
