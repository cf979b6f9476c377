"""Send windows: the hours and days a message may leave, in the business's local time and place.

Defaults by métier family (weekdays, local time), chosen from when owners can read a message without losing a
customer (DOMAIN "What works" 5: "si je m'absente de ma boutique une heure, je perds des clients"):

| family                          | window              | why                                             |
|---------------------------------|---------------------|-------------------------------------------------|
| batiment, transport             | 07:00-08:30, 17:30-19:30 | on site or on the road during the day      |
| hotellerie_restauration         | 15:00-17:30         | between lunch and dinner services               |
| alimentation                    | 14:00-16:30         | quiet afternoon, after the morning rush         |
| commerce_detail                 | 09:30-11:00, 14:00-16:00 | the shop's quiet hours                     |
| beaute_bien_etre                | 09:00-10:00, 13:00-14:30 | before the first and between appointments  |
| agriculture                     | 12:00-14:00, 19:00-20:30 | midday break and evening                   |
| sante                           | 12:30-14:00, 19:00-20:30 | between consultations                      |
| every other family (default)    | 09:00-12:00, 14:00-18:00 | office hours                               |

Never at night (before 07:00 or after 21:00), whatever a campaign says; no weekends and no public holidays
unless the campaign allows them. Public holidays are those of the business's place (`holidays` package:
metropolitan France, Alsace-Moselle 57/67/68, each overseas département), in its own time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from segments.territory import METROPOLITAN_TIMEZONE, departement_timezone

Range = tuple[dt.time, dt.time]
# A campaign's window overrides, hashable: (family or "default", (("HH:MM", "HH:MM"), ...)) pairs.
Overrides = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
NIGHT_START = dt.time(21)
NIGHT_END = dt.time(7)


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Allowed weekdays (0 = Monday) and time ranges within a day, in local time."""

    days: frozenset[int]
    ranges: tuple[Range, ...]
    skip_holidays: bool = True

    def allows(self, local: dt.datetime, is_holiday: Callable[[dt.date], bool]) -> bool:
        """True when `local` (aware, local time) is inside the window."""
        if local.weekday() not in self.days or (self.skip_holidays and is_holiday(local.date())):
            return False
        t = local.time().replace(tzinfo=None)
        return any(start <= t < end for start, end in self.ranges)


WEEKDAYS = frozenset(range(5))
ALL_DAYS = frozenset(range(7))


def _w(*pairs: tuple[str, str]) -> SendWindow:
    return SendWindow(WEEKDAYS, tuple((dt.time.fromisoformat(a), dt.time.fromisoformat(b)) for a, b in pairs))


DEFAULT_WINDOW = _w(("09:00", "12:00"), ("14:00", "18:00"))
FAMILY_WINDOWS: dict[str, SendWindow] = {
    "batiment": _w(("07:00", "08:30"), ("17:30", "19:30")),
    "transport": _w(("07:00", "08:30"), ("17:30", "19:30")),
    "hotellerie_restauration": _w(("15:00", "17:30")),
    "alimentation": _w(("14:00", "16:30")),
    "commerce_detail": _w(("09:30", "11:00"), ("14:00", "16:00")),
    "beaute_bien_etre": _w(("09:00", "10:00"), ("13:00", "14:30")),
    "agriculture": _w(("12:00", "14:00"), ("19:00", "20:30")),
    "sante": _w(("12:30", "14:00"), ("19:00", "20:30")),
}


@lru_cache(maxsize=4096)
def window_for(family: str | None, *, weekends: bool = False, holidays_allowed: bool = False,
               overrides: Overrides = ()) -> SendWindow:
    """The window of a family, with a campaign's overrides ((family or "default", ranges) pairs) and day rules."""
    own = dict(overrides)
    if family and family in own:
        base = _w(*own[family])
    elif family in FAMILY_WINDOWS:
        base = FAMILY_WINDOWS[family]
    elif "default" in own:
        base = _w(*own["default"])
    else:
        base = DEFAULT_WINDOW
    # Clip to daytime: a campaign may widen the hours, never into the night.
    ranges = tuple((max(a, NIGHT_END), min(b, NIGHT_START)) for a, b in base.ranges
                   if max(a, NIGHT_END) < min(b, NIGHT_START))
    return replace(base, days=ALL_DAYS if weekends else base.days, ranges=ranges,
                   skip_holidays=not holidays_allowed)


def overrides_key(windows: Mapping[str, Sequence[tuple[str, str]]]) -> Overrides:
    """A campaign's window overrides as a hashable key for `window_for`."""
    return tuple(sorted((f, tuple((start, end) for start, end in ranges)) for f, ranges in windows.items()))


# Département -> `holidays` subdivision where the place has public holidays of its own.
_SUBDIVISIONS = {"57": "57", "67": "6AE", "68": "6AE", "971": "971", "972": "972", "973": "973", "974": "974",
                 "976": "976", "975": "PM", "977": "BL", "978": "MF", "984": "TF", "986": "WF", "987": "PF",
                 "988": "NC"}


def holiday_subdivision(departement: str | None) -> str | None:
    """The `holidays` subdivision of a département ("57", "6AE" for 67/68, "974"...), None for the common list.

    Shared with the call rules (integrations.call_rules), which get codes typed by people: " 57 ", "2a".
    """
    return _SUBDIVISIONS.get((departement or "").strip().upper())


@lru_cache(maxsize=64)
def holiday_calendar(subdiv: str | None = None) -> holidays.HolidayBase:
    """French public holidays (all years, filled lazily), optionally for a subdivision."""
    return holidays.country_holidays("FR", subdiv=subdiv)


def is_french_holiday(day: dt.date, subdiv: str | None = None) -> bool:
    """True on a public holiday in France (or the subdivision)."""
    return day in holiday_calendar(subdiv)


@lru_cache(maxsize=64)
def holiday_checker(subdiv: str | None) -> Callable[[dt.date], bool]:
    """A one-argument holiday test for one place (cached per year: planning asks millions of times)."""
    years: dict[int, frozenset[dt.date]] = {}

    def check(day: dt.date) -> bool:
        dates = years.get(day.year)
        if dates is None:
            dates = years[day.year] = frozenset(holidays.country_holidays("FR", subdiv=subdiv, years=day.year))
        return day in dates

    return check


@dataclass(frozen=True, slots=True)
class Place:
    """Where a business is, for timing: its time zone and its public holidays."""

    timezone: str
    subdivision: str | None


@lru_cache(maxsize=256)
def place_of(departement: str | None) -> Place:
    """The time zone and holiday subdivision of a département (metropolitan and the common list when unknown)."""
    try:
        tz = departement_timezone(departement) if departement else METROPOLITAN_TIMEZONE
    except ValueError:
        tz = METROPOLITAN_TIMEZONE
    return Place(tz, holiday_subdivision(departement))


def next_slot(earliest: dt.datetime, window: SendWindow = DEFAULT_WINDOW, tz: str = METROPOLITAN_TIMEZONE,
              is_holiday: Callable[[dt.date], bool] = is_french_holiday) -> dt.datetime:
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
