"""The campaign form's recurrence picker: plain-French choices to an RFC 5545 rule, and a rule back to French.

Pure. The picker says "chaque lundi", "le premier mardi de chaque mois", "le 15 de chaque mois",
"le premier mardi de chaque trimestre", "chaque trimestre"; each is one `Recurrence` and one RRULE that
`orchestrator.core.schedule` expands with python-dateutil. A rule the picker cannot say (written in a YAML file)
is still described in French by `describe`, and `from_rule` returns None for it so the form keeps it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from dateutil.rrule import MONTHLY, WEEKLY, rrulestr

from orchestrator.core.schedule import RuleFields

EVERY = {"semaine": "chaque semaine", "mois": "chaque mois", "trimestre": "chaque trimestre"}
# How a monthly or quarterly rhythm picks its day: "le premier mardi" (rang), "le 15" (date), or the start date's.
DAY_KINDS = {"rang": "un jour de la semaine (ex. le premier mardi)", "date": "une date du mois (ex. le 15)",
             "debut": "le même jour que la première date"}
WEEKDAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
RANKS = {1: "premier", 2: "deuxième", 3: "troisième", 4: "quatrième", -1: "dernier"}
MAX_MONTHDAY = 28  # every month has it: "le 31 de chaque mois" would skip most months


@dataclass(frozen=True)
class Recurrence:
    """One choice of the picker: `every` is "semaine", "mois" or "trimestre"; `weekday` 0 (lundi) to 6;
    `rank` 1-4 or -1 (dernier) with a weekday, or `monthday` 1-28, or neither (the start date's day)."""

    every: str
    weekday: int | None = None
    rank: int | None = None
    monthday: int | None = None

    def __post_init__(self) -> None:
        if self.every not in EVERY:
            raise ValueError("rythme inconnu : choisissez chaque semaine, chaque mois ou chaque trimestre")
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise ValueError("jour de la semaine inconnu")
        if self.rank is not None and self.rank not in RANKS:
            raise ValueError("rang inconnu : premier, deuxième, troisième, quatrième ou dernier")
        if self.monthday is not None and not 1 <= self.monthday <= MAX_MONTHDAY:
            raise ValueError(f"le jour du mois va de 1 à {MAX_MONTHDAY} (tous les mois l'ont)")
        if self.every == "semaine" and (self.rank is not None or self.monthday is not None):
            raise ValueError("une récurrence chaque semaine se donne par un jour de la semaine")
        if self.rank is not None and self.weekday is None:
            raise ValueError("le rang (premier, dernier...) demande un jour de la semaine")
        if self.rank is not None and self.monthday is not None:
            raise ValueError("choisissez un jour de la semaine ou une date du mois, pas les deux")
        if self.every != "semaine" and self.weekday is not None and self.rank is None:
            raise ValueError("un jour de la semaine dans le mois demande son rang (premier, deuxième... dernier)")


def to_rule(choice: Recurrence) -> str:
    """The RRULE of a picker choice ("RRULE:FREQ=MONTHLY;BYDAY=1TU")."""
    if choice.every == "semaine":
        parts = ["FREQ=WEEKLY"]
        if choice.weekday is not None:
            parts.append(f"BYDAY={_CODES[choice.weekday]}")
    else:
        parts = ["FREQ=MONTHLY"] + (["INTERVAL=3"] if choice.every == "trimestre" else [])
        if choice.rank is not None and choice.weekday is not None:  # a rank always comes with its weekday
            parts.append(f"BYDAY={choice.rank}{_CODES[choice.weekday]}")
        elif choice.monthday is not None:
            parts.append(f"BYMONTHDAY={choice.monthday}")
    return "RRULE:" + ";".join(parts)


def to_french(choice: Recurrence) -> str:
    """The choice as a person says it: "le premier mardi de chaque mois"."""
    period = {"semaine": "semaine", "mois": "mois", "trimestre": "trimestre"}[choice.every]
    if choice.every == "semaine":
        return f"chaque {WEEKDAYS[choice.weekday]}" if choice.weekday is not None else "chaque semaine"
    if choice.rank is not None and choice.weekday is not None:  # a rank always comes with its weekday
        return f"le {RANKS[choice.rank]} {WEEKDAYS[choice.weekday]} de chaque {period}"
    if choice.monthday is not None:
        day = "1er" if choice.monthday == 1 else str(choice.monthday)
        return f"le {day} de chaque {period}"
    return EVERY[choice.every]


def from_rule(rule: str) -> Recurrence | None:
    """The picker choice that writes `rule`, or None when the picker cannot say it (the rule stays as written).

    Read with python-dateutil, so "FREQ=MONTHLY;BYDAY=+1TU" and "RRULE:BYDAY=1TU;FREQ=MONTHLY" are the same choice.
    """
    text = rule.strip()
    body = text[6:] if text.upper().startswith("RRULE:") else text
    keys = {part.split("=", 1)[0].upper() for part in body.split(";") if part}
    if not keys <= {"FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "WKST"}:
        return None  # COUNT, UNTIL, BYMONTH, BYHOUR...: written by hand, kept by hand
    try:
        parsed = cast(RuleFields, rrulestr("RRULE:" + body))
    except (ValueError, TypeError):
        return None
    freq, interval = parsed._freq, parsed._interval
    weekdays = parsed._byweekday or ()
    nth = parsed._bynweekday or ()
    monthdays = tuple(parsed._bymonthday or ()) if "BYMONTHDAY" in keys else ()
    if freq == WEEKLY and interval == 1:
        if "BYDAY" not in keys:
            return Recurrence("semaine")
        if len(weekdays) == 1 and not nth:
            return Recurrence("semaine", weekday=weekdays[0])
        return None
    if freq != MONTHLY or interval not in (1, 3):
        return None
    every = "mois" if interval == 1 else "trimestre"
    if "BYDAY" in keys:
        if len(nth) == 1 and not weekdays and not monthdays and nth[0][1] in RANKS:
            return Recurrence(every, weekday=nth[0][0], rank=nth[0][1])
        return None
    if monthdays:
        if len(monthdays) == 1 and 1 <= monthdays[0] <= MAX_MONTHDAY:
            return Recurrence(every, monthday=monthdays[0])
        return None
    return Recurrence(every)


def describe(rule: str | None) -> str:
    """Any schedule's rhythm in French: the picker's words when it can say it, else a plain summary."""
    if not rule:
        return "une seule fois"
    choice = from_rule(rule)
    if choice is not None:
        return to_french(choice)
    return "une récurrence particulière, écrite dans le fichier de la campagne"


def from_form(every: str, day_kind: str, rank: str, weekday: str, monthday: str) -> Recurrence | None:
    """The picker's fields as posted (all strings; `every` empty: no repetition) as a choice, or ValueError in
    French naming what is missing."""
    if not every:
        return None
    if every not in EVERY:
        raise ValueError("rythme inconnu : choisissez chaque semaine, chaque mois ou chaque trimestre")
    day = int(weekday) if weekday.strip().isdigit() else None
    if every == "semaine":
        return Recurrence("semaine", weekday=day)
    if day_kind == "rang":
        if day is None or not rank.lstrip("-").isdigit():
            raise ValueError("choisissez le rang et le jour de la semaine (ex. le premier mardi)")
        return Recurrence(every, weekday=day, rank=int(rank))
    if day_kind == "date":
        if not monthday.strip().isdigit():
            raise ValueError(f"indiquez le jour du mois, de 1 à {MAX_MONTHDAY}")
        return Recurrence(every, monthday=int(monthday))
    return Recurrence(every)


def form_fields(choice: Recurrence | None) -> dict[str, str]:
    """The picker's fields for a choice (the inverse of `from_form`)."""
    if choice is None:
        return {"rec_every": "", "rec_day_kind": "debut", "rec_rank": "1", "rec_weekday": "1", "rec_monthday": "1"}
    kind = "rang" if choice.rank is not None else "date" if choice.monthday is not None else "debut"
    return {
        "rec_every": choice.every,
        "rec_day_kind": kind,
        "rec_rank": str(choice.rank if choice.rank is not None else 1),
        "rec_weekday": str(choice.weekday if choice.weekday is not None else 1),
        "rec_monthday": str(choice.monthday if choice.monthday is not None else 1),
    }
