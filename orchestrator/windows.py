"""Send windows: the hours and days a message may leave, in the business's local time.

Default: weekdays 09:00-12:00 and 14:00-18:00 Europe/Paris, never on a French public holiday.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

Range = tuple[dt.time, dt.time]


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Allowed weekdays (0 = Monday) and time ranges within a day, in local time."""

    days: frozenset[int]
    ranges: tuple[Range, ...]
    skip_holidays: bool = True

    def allows(self, local: dt.datetime, is_holiday) -> bool:
        """True when `local` (aware, local time) is inside the window."""
        if local.weekday() not in self.days or (self.skip_holidays and is_holiday(local.date())):
            return False
        t = local.time().replace(tzinfo=None)
        return any(start <= t < end for start, end in self.ranges)


WEEKDAYS = frozenset(range(5))
DEFAULT_WINDOW = SendWindow(WEEKDAYS, ((dt.time(9), dt.time(12)), (dt.time(14), dt.time(18))))


@lru_cache(maxsize=64)
def holiday_calendar(subdiv: str | None = None) -> holidays.HolidayBase:
    """French public holidays (all years, filled lazily), optionally for a subdivision."""
    return holidays.country_holidays("FR", subdiv=subdiv)


def is_french_holiday(day: dt.date, subdiv: str | None = None) -> bool:
    """True on a public holiday in France (or the subdivision)."""
    return day in holiday_calendar(subdiv)


def next_slot(earliest: dt.datetime, window: SendWindow = DEFAULT_WINDOW, tz: str = "Europe/Paris",
              is_holiday=is_french_holiday) -> dt.datetime:
    """The first instant at or after `earliest` (aware) inside the window, as an aware UTC datetime."""
    zone = ZoneInfo(tz)
    local = earliest.astimezone(zone)
    for _ in range(366):
        day = local.date()
        if local.weekday() in window.days and not (window.skip_holidays and is_holiday(day)):
            for start, end in sorted(window.ranges):
                start_dt = dt.datetime.combine(day, start, zone)
                end_dt = dt.datetime.combine(day, end, zone)
                if local < end_dt:
                    return max(local, start_dt).astimezone(dt.UTC)
        local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), zone)
    raise ValueError("no allowed send slot within a year: the window is empty")
