"""Durations as a campaign writes them, one vocabulary for every field of its YAML: `30min`, `4h`, `2d`, `3w`,
`6mo`, `1y` (`j` and `a`, the French day and year, read as `d` and `y`); a bare number is a number of days.

The old unit `m` meant minutes in a step delay (and in the waits and intervals written like one) but 30 days in a
segment age, in the same file. Old specs keep their meaning: `m` is still read as it was in each place
(`OldM`), and `ambiguous_m` gives the sentence that asks the author to write `min` or `mo` instead.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Literal

UNITS: dict[str, dt.timedelta] = {
    "min": dt.timedelta(minutes=1),
    "h": dt.timedelta(hours=1),
    "d": dt.timedelta(days=1),
    "j": dt.timedelta(days=1),
    "w": dt.timedelta(weeks=1),
    "mo": dt.timedelta(days=30),
    "y": dt.timedelta(days=365),
    "a": dt.timedelta(days=365),
}
# What the ambiguous old `m` meant where it is written: "min" in delays, waits and intervals, "mo" in ages.
OldM = Literal["min", "mo"]
EXAMPLES = "30min, 4h, 2d, 3w, 6mo, 1y"
_WORDS = {"min": ("minute", "minutes"), "h": ("heure", "heures"), "d": ("jour", "jours"), "j": ("jour", "jours"),
          "w": ("semaine", "semaines"), "mo": ("mois", "mois"), "y": ("an", "ans"), "a": ("an", "ans")}
_DURATION = re.compile(r"^\s*(\d+)\s*(min|mo|m|h|d|j|w|y|a)\s*$")


def parse_duration(value: str | int, what: str, limit: dt.timedelta, old_m: OldM) -> dt.timedelta:
    """The duration `value` if it is readable, not negative and at most `limit`; else a French ValueError naming
    `what` (the field, in words). The old `m` is read as `old_m`."""
    if isinstance(value, bool):
        raise ValueError(f"{what} : valeur illisible {value!r} (exemples : {EXAMPLES})")
    if isinstance(value, int):
        n, unit = value, "d"
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{what} : valeur illisible {str(value)[:40]!r} (exemples : {EXAMPLES})")
        digits = match[1].lstrip("0") or "0"
        n = int(digits) if len(digits) <= 12 else 10**12  # longer: far too long anyway
        unit = old_m if match[2] == "m" else match[2]
    if n < 0:
        raise ValueError(f"{what} : valeur négative refusée ({value!r})")
    if n > limit // UNITS[unit]:
        raise ValueError(f"{what} : au plus {spoken_limit(limit)}, reçu {str(value)[:40]!r}")
    return n * UNITS[unit]


def ambiguous_m(value: str | int | None, what: str, old_m: OldM) -> str | None:
    """The sentence asking to rewrite a duration in the old unit `m` (with what it is read as here), or None."""
    if not isinstance(value, str) or (match := _DURATION.match(value)) is None or match[2] != "m":
        return None
    n = int(match[1])
    return (f"{what} : « {value.strip()} » est ambigu, lu ici comme {amount(n, old_m)} ; écrivez « {n}min » "
            f"(minutes) ou « {n}mo » (mois)")


def duration_words(value: str | int | None, old_m: OldM) -> str:
    """A duration as a person says it: "14 jours", "1 an", "6 mois", "30 minutes" (unreadable: as written)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return amount(value, "d")
    match = _DURATION.match(str(value))
    if match is None:
        return f"{value} jours"
    return amount(int(match[1]), old_m if match[2] == "m" else match[2])


def amount(n: int, unit: str) -> str:
    """`n` of `unit` in words: "1 jour", "3 semaines", "1 mois"."""
    one, many = _WORDS[unit]
    return f"{n} {many if n > 1 else one}"


def spoken_limit(limit: dt.timedelta) -> str:
    """A limit in days as a person says it: "2 ans (730 jours)", "90 jours"."""
    days = limit.days
    if days % 365 == 0:
        years = days // 365
        return f"{years} an{'s' if years > 1 else ''} ({days} jours)"
    return f"{days} jours"
