"""The regulatory calendar: dated deadlines (shipped in `deadlines.yaml`) become `deadline` events.

Pure: given the deadlines, the offsets (days before a deadline) and today, `due_offsets` says which
(deadline, offset) reminders are due; `deadline_events` turns them into one event per concerned
business. The external id `deadline:<id>:<offset>:<siret>` makes each reminder go out once, however
often the job runs.

Who is concerned is decided by the size class of the company, not of the establishment: `size_class` reads
the legal unit's INSEE `categorieEntreprise` (PME, ETI, GE; from `StockUniteLegale` or the Sirene API) first.
A 5-person branch of a large group belongs to a GE: its e-invoicing duties start on 1 September 2026, not 2027.
When the category is unknown, the establishment's head count is only a floor (an establishment of 250 people
belongs to a company of at least 250, so not a PME); below that the PME/micro dates apply, the common case.

A deadline may state the dates of both duties it belongs to (`duties: {receive, issue}`): the event payload
carries them (`receive_date`, `issue_date`) so a message says both dates where both duties apply (a PME receives
from 1 September 2026 and issues from 1 September 2027), or one date where they coincide (ETI, GE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from triggers.model import EventIn

SOURCE = "calendar"
DEFAULT_OFFSETS = (270, 180, 90, 30)
SIZES = ("micro", "pme", "eti", "ge")
_SIZE_ALIASES = {
    "micro": "micro",
    "tpe": "micro",
    "micro-entreprise": "micro",
    "pme": "pme",
    "eti": "eti",
    "ge": "ge",
}

# INSEE's categorieEntreprise (StockUniteLegale) by size class. INSEE's PME include the micro-entreprises.
CATEGORIES = {"PME": "pme", "ETI": "eti", "GE": "ge"}

# Sirene head-count tranches by size class (fewer than 10, 10-249, 250-4,999, 5,000 and more).
_SIZE_OF_TRANCHE = {
    **dict.fromkeys(("", "NN", "00", "01", "02", "03"), "micro"),
    **dict.fromkeys(("11", "12", "21", "22", "31"), "pme"),
    **dict.fromkeys(("32", "41", "42", "51"), "eti"),
    **dict.fromkeys(("52", "53"), "ge"),
}


class CalendarError(ValueError):
    """The deadlines file is malformed; the message names the entry and the field."""


@dataclass(frozen=True)
class Deadline:
    """One dated duty, who it concerns and where it is stated."""

    id: str
    date: dt.date
    title: str
    summary: str
    sizes: frozenset[str]
    sources: tuple[str, ...]
    receive_from: dt.date | None = None  # the day the concerned companies must be able to receive e-invoices
    issue_from: dt.date | None = None  # the day they must issue them


def size_of(tranche: str | None) -> str:
    """The size class of a Sirene tranche (unknown counts as micro: a TPE without known staff)."""
    return _SIZE_OF_TRANCHE.get(tranche or "", "micro")


def size_class(categorie: str | None, tranche: str | None = None) -> str:
    """The company's size class: its INSEE category (PME, ETI, GE) when known, else a floor from the tranche.

    PME covers the micro-entreprises too (same e-invoicing dates): a PME whose establishment is a TPE is `micro`.
    Unknown category: the establishment's tranche can only show a company at least that large (250 people or
    more is not a PME); a small or unknown tranche gives `micro`, the PME/micro dates.
    """
    floor = size_of(tranche)
    known = CATEGORIES.get((categorie or "").strip().upper())
    if known is None:
        return floor
    if known == "pme":
        return "micro" if floor == "micro" else "pme"
    return known


def load_deadlines(path: str | Path | None = None) -> list[Deadline]:
    """Deadlines from `path`, or from the shipped `triggers/deadlines.yaml`."""
    if path is None:
        text = resources.files("triggers").joinpath("deadlines.yaml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except (yaml.YAMLError, ValueError) as exc:
        # PyYAML turns "2027-13-01" into a date itself and raises a bare ValueError.
        raise CalendarError(f"unreadable deadlines file (bad YAML or date): {exc}") from exc
    entries = data.get("deadlines") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CalendarError("the file must hold a 'deadlines' list")
    out: list[Deadline] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        out.append(_deadline(entry, n))
        if out[-1].id in seen:
            raise CalendarError(f"deadline {n}: duplicate id {out[-1].id!r}")
        seen.add(out[-1].id)
    return out


def _deadline(entry: Any, n: int) -> Deadline:
    if not isinstance(entry, dict):
        raise CalendarError(f"deadline {n}: not a mapping")
    ident = str(entry.get("id") or "").strip()
    if not ident or ":" in ident:
        raise CalendarError(f"deadline {n}: 'id' is required and may not contain ':'")
    day = entry.get("date")
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            day = None
    if not isinstance(day, dt.date):
        raise CalendarError(f"deadline {ident}: 'date' must be YYYY-MM-DD")
    concerns = entry.get("concerns") or {}
    sizes_raw = concerns.get("sizes") if isinstance(concerns, dict) else None
    if not sizes_raw:
        raise CalendarError(f"deadline {ident}: 'concerns.sizes' is required")
    sizes = set()
    for size in sizes_raw:
        key = _SIZE_ALIASES.get(str(size).lower())
        if key is None:
            raise CalendarError(f"deadline {ident}: unknown size {size!r} (known: {', '.join(SIZES)}, tpe)")
        sizes.add(key)
    sources = tuple(str(s) for s in entry.get("sources") or ())
    if not sources:
        raise CalendarError(f"deadline {ident}: at least one source is required")
    duties = entry.get("duties") or {}
    if not isinstance(duties, dict) or set(duties) - {"receive", "issue"}:
        raise CalendarError(f"deadline {ident}: 'duties' holds only 'receive' and 'issue' dates")
    return Deadline(
        id=ident,
        date=day,
        title=str(entry.get("title") or ident),
        summary=str(entry.get("summary") or ""),
        sizes=frozenset(sizes),
        sources=sources,
        receive_from=_duty_date(duties.get("receive"), ident, "receive"),
        issue_from=_duty_date(duties.get("issue"), ident, "issue"),
    )


def _duty_date(value: Any, ident: str, name: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            value = None
    if not isinstance(value, dt.date):
        raise CalendarError(f"deadline {ident}: 'duties.{name}' must be YYYY-MM-DD")
    return value


def due_offsets(
    deadlines: Iterable[Deadline], offsets: Sequence[int], today: dt.date
) -> list[tuple[Deadline, int]]:
    """The (deadline, offset) reminders due today: per upcoming deadline, the latest offset crossed.

    An offset is crossed when `deadline.date - offset days <= today <= deadline.date`. Only the
    smallest crossed offset is due: a business first seen 85 days before a deadline gets the
    90-day reminder, not the 270- and 180-day ones as well.
    """
    due: list[tuple[Deadline, int]] = []
    for deadline in deadlines:
        if today > deadline.date:
            continue
        crossed = [o for o in offsets if deadline.date - dt.timedelta(days=o) <= today]
        if crossed:
            due.append((deadline, min(crossed)))
    return due


def concerns(
    deadline: Deadline, tranche: str | None, state: str | None = "active", categorie: str | None = None
) -> bool:
    """True when the deadline applies to an active business of this company category (and tranche)."""
    return state != "closed" and size_class(categorie, tranche) in deadline.sizes


def external_id(deadline: Deadline, offset: int, siret: str) -> str:
    """The idempotency key of one reminder."""
    return f"deadline:{deadline.id}:{offset}:{siret}"


def deadline_events(
    due: Iterable[tuple[Deadline, int]],
    businesses: Iterable[tuple[Any, ...]],
) -> Iterator[EventIn]:
    """One `deadline` event per due reminder and concerned business.

    `businesses` are (siret, tranche, state) or (siret, tranche, state, categorie_entreprise) tuples. The payload
    names the size class that decided and, when the deadline states them, both duty dates.
    """
    due = list(due)
    for siret, tranche, state, *rest in businesses:
        categorie = rest[0] if rest else None
        size = size_class(categorie, tranche)
        for deadline, offset in due:
            if not concerns(deadline, tranche, state, categorie):
                continue
            payload: dict[str, Any] = {
                "deadline": deadline.id,
                "deadline_date": deadline.date.isoformat(),
                "offset_days": offset,
                "title": deadline.title,
                "size": size,
            }
            if categorie:
                payload["categorie_entreprise"] = categorie
            if deadline.receive_from:
                payload["receive_date"] = deadline.receive_from.isoformat()
            if deadline.issue_from:
                payload["issue_date"] = deadline.issue_from.isoformat()
            yield EventIn(
                source=SOURCE,
                external_id=external_id(deadline, offset, siret),
                type="deadline",
                occurred_on=deadline.date - dt.timedelta(days=offset),
                siret=siret,
                siren=siret[:9],
                payload=payload,
            )
