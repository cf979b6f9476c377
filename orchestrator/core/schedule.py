"""Scheduled and recurring campaigns: occurrences of a start date or an RFC 5545 rule, in the owner's time zone.

Pure. A rule is expanded in local wall-clock time ("the first Tuesday of the month at 09:00" stays at 09:00
across daylight-saving changes) and each occurrence is returned as an aware UTC instant.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol, cast
from zoneinfo import ZoneInfo

from dateutil.rrule import DAILY, rrule, rruleset, rrulestr

_EPOCH = dt.datetime(2000, 1, 3, 9, 0)


class RuleFields(Protocol):
    """What python-dateutil keeps of a parsed rule (its own attributes, outside its typed API)."""

    _freq: int
    _interval: int
    _byweekday: tuple[int, ...] | None
    _bynweekday: tuple[tuple[int, int], ...] | None
    _bymonthday: tuple[int, ...] | None


def _parse(rule: str, start: dt.datetime) -> rrule | rruleset:
    text = rule.strip()
    if not text.upper().startswith(("RRULE:", "DTSTART", "EXRULE", "RDATE", "EXDATE")):
        text = f"RRULE:{text}"
    return rrulestr(text, dtstart=start, forceset=True)


def check_rule(rule: str) -> None:
    """Raise ValueError (in French) when the rule cannot be read or repeats more often than daily."""
    try:
        parsed = _parse(rule, _EPOCH)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"règle de récurrence illisible: {rule!r} ({exc})") from exc
    # A collectivité campaign that repeats every hour is a mistake, not a rhythm.
    for r in getattr(parsed, "_rrule", []):
        if isinstance(r, rrule) and cast(RuleFields, r)._freq > DAILY:
            raise ValueError(f"récurrence trop fréquente: {rule!r} (au plus une par jour)")


def _local_start(start: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The schedule's start as naive wall-clock time in `zone`."""
    if start.tzinfo is not None:
        start = start.astimezone(zone)
    return start.replace(tzinfo=None)


def _to_utc(local: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def occurrences_between(start: dt.datetime, rule: str | None, tz: str, after: dt.datetime | None,
                        until: dt.datetime, *, limit: int = 10_000) -> list[dt.datetime]:
    """Occurrences (aware UTC) strictly after `after` (None: from the start) and at or before `until`."""
    zone = ZoneInfo(tz)
    first = _local_start(start, zone)
    if rule is None:
        at = _to_utc(first, zone)
        return [at] if (after is None or at > after) and at <= until else []
    out: list[dt.datetime] = []
    # Bounds in wall-clock time, one day wide on each side: the exact test is on UTC below.
    lo = after.astimezone(zone).replace(tzinfo=None) - dt.timedelta(days=1) if after else first
    hi = until.astimezone(zone).replace(tzinfo=None) + dt.timedelta(days=1)
    for local in _parse(rule, first).xafter(lo, inc=True):
        if local > hi or len(out) >= limit:
            break
        at = _to_utc(local, zone)
        if (after is None or at > after) and at <= until:
            out.append(at)
    return out


def next_occurrences(start: dt.datetime, rule: str | None, tz: str, after: dt.datetime, count: int = 5
                     ) -> list[dt.datetime]:
    """The next `count` occurrences (aware UTC) strictly after `after`."""
    zone = ZoneInfo(tz)
    first = _local_start(start, zone)
    if rule is None:
        at = _to_utc(first, zone)
        return [at] if at > after else []
    out: list[dt.datetime] = []
    lo = after.astimezone(zone).replace(tzinfo=None) - dt.timedelta(days=1)
    for local in _parse(rule, first).xafter(max(lo, first), inc=True):
        at = _to_utc(local, zone)
        if at > after:
            out.append(at)
            if len(out) >= count:
                break
    return out


def due_occurrence(start: dt.datetime, rule: str | None, tz: str, last_done: dt.datetime | None,
                   now: dt.datetime) -> tuple[dt.datetime | None, int]:
    """The occurrence to run now and how many earlier ones it stands for.

    Missed occurrences (the engine was down) run once: only the latest due one is returned, with the
    count of the others it replaces.
    """
    due = occurrences_between(start, rule, tz, last_done, now)
    if not due:
        return None, 0
    return due[-1], len(due) - 1
