"""When an adviser or an ambassador may call a business: pure rules, no I/O.

The rules are those of telephone canvassing (code de la consommation, art. D223-9), which apply because a
sole trader reached on a personal line is treated as a consumer:

- weekdays only, 10:00-13:00 and 14:00-20:00 local time; never on a weekend or a public holiday (the
  metropolitan list, plus Alsace-Moselle's and each overseas département's own, from `holidays`);
- at most 4 calls in any 30 days;
- no new call for 60 days after a refusal.

One house rule on top: at least `min_gap` (a day by default) between two attempts, so four attempts are
not spent in one morning. Consent is checked before a task exists (see `integrations.call_task`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# The planner's calendar, so messages and calls share one list of places and holidays. orchestrator.core.windows
# imports nothing from the project at load time: no import cycle. holiday_subdivision is re-exported.
from orchestrator.core.windows import holiday_checker, holiday_subdivision  # noqa: F401

CALL_WINDOWS = ((dt.time(10, 0), dt.time(13, 0)), (dt.time(14, 0), dt.time(20, 0)))
MAX_ATTEMPTS = 4
ATTEMPT_PERIOD = dt.timedelta(days=30)
REFUSAL_COOLDOWN = dt.timedelta(days=60)
MIN_GAP = dt.timedelta(days=1)
SEARCH_DAYS = 400  # beyond a year of closed days something is wrong: give up rather than loop

# Call outcomes an adviser records.
ANSWERED = "done"  # reached, conversation held
REFUSED = "refused"  # the person does not want to be called
NO_ANSWER = "no_answer"
OUTCOMES = (ANSWERED, REFUSED, NO_ANSWER)


@dataclass(frozen=True, slots=True)
class CallAttempt:
    """One call already made to this number: when, and how it ended."""

    at: dt.datetime  # aware, or naive UTC (the store's convention)
    outcome: str = NO_ANSWER


def is_callable_day(day: dt.date, subdiv: str | None = None) -> bool:
    """True on a weekday that is not a public holiday where the business is."""
    return day.weekday() < 5 and not holiday_checker(subdiv)(day)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def earliest_by_history(
    history: Iterable[CallAttempt], *, min_gap: dt.timedelta = MIN_GAP
) -> dt.datetime | None:
    """The first moment the history allows another call (ignoring the clock windows), None if no limit."""
    attempts = sorted((_aware(a.at), a.outcome) for a in history)
    bounds: list[dt.datetime] = []
    if attempts:
        bounds.append(attempts[-1][0] + min_gap)
    if len(attempts) >= MAX_ATTEMPTS:
        # The window (t - 30 days, t] must hold at most 3 earlier calls: wait for the 4th latest to leave it.
        bounds.append(attempts[-MAX_ATTEMPTS][0] + ATTEMPT_PERIOD)
    refusals = [at for at, outcome in attempts if outcome == REFUSED]
    if refusals:
        bounds.append(refusals[-1] + REFUSAL_COOLDOWN)
    return max(bounds) if bounds else None


def next_call_slot(
    now: dt.datetime,
    tz: str | ZoneInfo,
    history: Sequence[CallAttempt] = (),
    *,
    subdiv: str | None = None,
    min_gap: dt.timedelta = MIN_GAP,
) -> dt.datetime | None:
    """The earliest moment at or after `now` when a call is allowed, in `tz`; None if none within a year.

    `now` is aware (naive means UTC). `subdiv` is a `holidays` subdivision (see `holiday_subdivision`).
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    start = _aware(now)
    limit = earliest_by_history(history, min_gap=min_gap)
    if limit is not None and limit > start:
        start = limit
    local = start.astimezone(zone)
    for offset in range(SEARCH_DAYS):
        day = local.date() + dt.timedelta(days=offset)
        if not is_callable_day(day, subdiv):
            continue
        for opens, closes in CALL_WINDOWS:
            window_start = dt.datetime.combine(day, opens, tzinfo=zone)
            window_end = dt.datetime.combine(day, closes, tzinfo=zone)
            if local < window_end:
                return max(local, window_start)
    return None


def is_call_allowed(
    moment: dt.datetime,
    tz: str | ZoneInfo,
    history: Sequence[CallAttempt] = (),
    *,
    subdiv: str | None = None,
    min_gap: dt.timedelta = MIN_GAP,
) -> bool:
    """True when a call may be made exactly at `moment`."""
    slot = next_call_slot(moment, tz, history, subdiv=subdiv, min_gap=min_gap)
    return slot is not None and slot == _aware(moment)
