"""Intermediaries (issue 16, point 1): the registry, the businesses each serves, and the answers they send back.

Intermediaries CSV (UTF-8, `;` or `,` separated, lists inside a cell separated by "|"), imported like ambassadors
(`store.journeys`: same reader, same line-level rejects, re-import updates by `key`):
  key;name;kind;email;phone;commune;territory
  `kind` among cabinet_comptable, cma, cci, banque, association, autre; an e-mail is required (the `relay` channel
  sends its digests by e-mail); `commune` (optional) the commune code where they work; `territory` (optional)
  "level:code" items ("epci:243500139|departement:35").
Clients CSV (the businesses each intermediary serves):
  intermediary;siret;source;date
  `intermediary` an imported intermediary's key; `siret` 14 digits (the business need not be known yet);
  `source` (optional) who told (a partner's name; default: the file's name); `date` (optional, AAAA-MM-JJ or
  JJ/MM/AAAA) the date of the link (default: the import's day). Re-importing a link updates its source and date.

A business served by several intermediaries is relayed to the one whose link is the most recent.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from stdnum.fr import siret as siret_number

from segments.territory import validate_codes
from store.conversions import record_interaction
from store.journeys import Reject, _checked_rows, _read, _territory, _upsert
from store.models import Interaction, Intermediary, IntermediaryClient
from store.sql import among, chunks, insert_for

INTERMEDIARIES = Intermediary.__table__
CLIENTS = IntermediaryClient.__table__
INTERACTIONS = Interaction.__table__

KINDS = {"cabinet_comptable": "cabinet comptable", "cma": "conseiller CMA", "cci": "conseiller CCI",
         "banque": "conseiller bancaire", "association": "association", "autre": "autre"}
INTERMEDIARY_COLUMNS = ("key", "name", "kind", "email", "phone", "commune", "territory")
INTERMEDIARY_OPTIONAL = ("phone", "commune", "territory")
CLIENT_COLUMNS = ("intermediary", "siret", "source", "date")
CLIENT_OPTIONAL = ("source", "date")

# The three one-click answers of a digest, by the word in their URL: the interaction kind each records and the
# words the intermediary reads. "je m'en occupe" and "déjà fait" stop the campaign's later direct messages.
ANSWERS = {
    "occupe": ("relay_taken", "Je m'en occupe"),
    "fait": ("relay_done", "Déjà fait"),
    "pas-concerne": ("relay_not_concerned", "Pas concerné"),
}
STOPPING_KINDS = ("relay_taken", "relay_done")
ID_CHUNK = 2000


def _text(source: str | Path) -> str:
    return source if isinstance(source, str) and "\n" in source else Path(source).read_text(encoding="utf-8")


def _expected(text: str, columns: tuple[str, ...], optional: tuple[str, ...]) -> tuple[str, ...]:
    """The columns the file must hold: every column, less the optional ones it leaves out."""
    first = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    header = {h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])}
    return tuple(c for c in columns if c not in optional or c in header)


def _valid_email(value: str) -> bool:

    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def parse_intermediaries(text: str) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Validated intermediary rows and the lines rejected (line, field, reason in French)."""
    def check(r: dict[str, str], bad: Callable[[str, str], None]) -> dict[str, Any]:
        if not r.get("name"):
            bad("name", "nom manquant")
        if r.get("kind") not in KINDS:
            bad("kind", f"type inconnu: {r.get('kind')!r} (connus: {', '.join(KINDS)})")
        email = (r.get("email") or "").strip()
        if not email:
            bad("email", "e-mail manquant: les synthèses partent par e-mail")
        elif not _valid_email(email):
            bad("email", f"e-mail illisible: {email!r}")
        phone = r.get("phone") or None
        if phone and len(phone) > 20:
            bad("phone", f"téléphone trop long: {phone!r}")
        if r.get("commune") and validate_codes("commune", [r["commune"]]):
            bad("commune", f"code commune inconnu: {r['commune']}")
        territory = _territory(r.get("territory"), bad)
        return {"key": r["key"], "name": r["name"], "kind": r["kind"], "email": email.lower(), "phone": phone,
                "commune": r.get("commune") or None, "territory": territory, "active": True}

    rows, rejects = _read(text, _expected(text, INTERMEDIARY_COLUMNS, INTERMEDIARY_OPTIONAL))
    out, faults = _checked_rows(rows, check)
    return out, rejects + faults


def import_intermediaries(engine: Engine, source: str | Path, *, now: dt.datetime) -> tuple[int, list[Reject]]:
    """Import (create or update by key, at `now`) intermediaries from a CSV file or text; returns (imported,
    rejects)."""
    rows, rejects = parse_intermediaries(_text(source))
    return _upsert(engine, INTERMEDIARIES, rows, now), rejects


def _date(value: str) -> dt.date | None:
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


def parse_clients(text: str, known: dict[str, int], source: str, today: dt.date
                  ) -> tuple[list[dict[str, Any]], list[Reject]]:
    """Validated (intermediary, SIRET) links and the lines rejected; `known` maps intermediary keys to ids."""
    rows, rejects = _read(text, _expected(text, CLIENT_COLUMNS, CLIENT_OPTIONAL))
    out: dict[tuple[int, str], dict[str, Any]] = {}
    for line, r in rows:
        errors: list[Reject] = []

        def bad(fld: str, reason: str, line=line, errors=errors) -> None:
            errors.append(Reject(line, fld, reason))

        key = r.get("intermediary") or ""
        if not key:
            bad("intermediary", "intermédiaire manquant")
        elif key not in known:
            bad("intermediary", f"intermédiaire inconnu: {key} (importez-le d'abord: declic intermediaries import)")
        siret = (r.get("siret") or "").replace(" ", "")
        if not siret:
            bad("siret", "SIRET manquant")
        elif not siret_number.is_valid(siret):
            bad("siret", f"SIRET invalide: {siret!r} (14 chiffres, clé de contrôle juste)")
        linked_on = today
        if r.get("date"):
            linked_on = _date(r["date"])
            if linked_on is None:
                bad("date", f"date illisible: {r['date']!r} (AAAA-MM-JJ ou JJ/MM/AAAA)")
            elif linked_on > today:
                bad("date", f"date dans le futur: {r['date']}")
        if len(r.get("source") or "") > 120:
            bad("source", "source trop longue (120 caractères au plus)")
        if errors:
            rejects += errors
            continue
        out[(known[key], siret)] = {"intermediary_id": known[key], "siret": siret,
                                    "source": r.get("source") or source, "linked_on": linked_on}
    return list(out.values()), rejects


def import_clients(engine: Engine, source: str | Path, *, source_name: str | None = None,
                   today: dt.date, now: dt.datetime) -> tuple[int, list[Reject]]:
    """Import the businesses intermediaries serve (create or update each link, at `now`); returns (imported,
    rejects).

    A link's source is its `source` cell, else `source_name`, else the file's name; a link without a date is
    dated `today` (the local date)."""
    text = _text(source)
    name = source_name or (Path(source).name if not (isinstance(source, str) and "\n" in source) else "import")
    with engine.connect() as conn:
        known = dict(conn.execute(select(INTERMEDIARIES.c.key, INTERMEDIARIES.c.id)).all())
    rows, rejects = parse_clients(text, known, name, today)
    if rows:
        with engine.begin() as conn:
            stmt = insert_for(conn, CLIENTS)
            stmt = stmt.on_conflict_do_update(index_elements=["intermediary_id", "siret"],
                                              set_={"source": stmt.excluded.source,
                                                    "linked_on": stmt.excluded.linked_on})
            conn.execute(stmt, [dict(r, created_at=now) for r in rows])
    return len(rows), rejects


def relays_for(conn: Connection, sirets: Iterable[str]) -> dict[str, str]:
    """The e-mail of the intermediary each SIRET is relayed to (the most recent link of an active one)."""
    wanted = sorted(set(sirets))
    out: dict[str, str] = {}
    for part in chunks(wanted, ID_CHUNK):
        rows = conn.execute(
            select(CLIENTS.c.siret, INTERMEDIARIES.c.email)
            .select_from(CLIENTS.join(INTERMEDIARIES, INTERMEDIARIES.c.id == CLIENTS.c.intermediary_id))
            .where(among(conn, CLIENTS.c.siret, part), INTERMEDIARIES.c.active.is_(True),
                   INTERMEDIARIES.c.email.is_not(None))
            .order_by(CLIENTS.c.linked_on, CLIENTS.c.id))
        for siret, email in rows:
            out[siret] = email  # the latest link wins
    return out


def with_relays(conn: Connection, views: Sequence):
    """Planner views (BusinessView, or Candidate/FollowUp holding one as `business`) with the e-mail of the
    business's intermediary as `relay` (the recipient of a `relay` step)."""
    if not views:
        return list(views)
    has_business = hasattr(views[0], "business")
    found = relays_for(conn, ((v.business if has_business else v).siret for v in views))
    if not found:
        return list(views)
    out = []
    for v in views:
        b = v.business if has_business else v
        relay = found.get(b.siret)
        if relay is None:
            out.append(v)
        else:
            b = replace(b, relay=relay)
            out.append(replace(v, business=b) if has_business else b)
    return out


def intermediaries_by_email(conn: Connection, emails: Iterable[str]) -> dict[str, Any]:
    """Active intermediaries by lower-case e-mail (the digest names them)."""
    wanted = sorted({e.lower() for e in emails if e})
    if not wanted:
        return {}
    rows = conn.execute(select(INTERMEDIARIES).where(func.lower(INTERMEDIARIES.c.email).in_(wanted))
                        .order_by(INTERMEDIARIES.c.id))
    return {r.email.lower(): r for r in rows}


def relayed_enrollments(conn: Connection, enrollment_ids: Iterable[int]) -> set[int]:
    """Enrollments whose business an intermediary took in hand ("je m'en occupe") or found done ("déjà fait")."""
    wanted = sorted(set(enrollment_ids))
    out: set[int] = set()
    for part in chunks(wanted, ID_CHUNK):
        out |= set(conn.execute(select(INTERACTIONS.c.enrollment_id).where(
            INTERACTIONS.c.enrollment_id.in_(part), INTERACTIONS.c.kind.in_(STOPPING_KINDS))).scalars())
    return out


def record_answer(conn: Connection, msg, answer: str, at: dt.datetime) -> bool:
    """Record an intermediary's answer about the client of relay message `msg`; False when it was already given
    (the same answer twice is one interaction)."""
    kind = ANSWERS[answer][0]
    done = conn.execute(select(func.count()).select_from(INTERACTIONS).where(
        INTERACTIONS.c.message_id == msg.id, INTERACTIONS.c.kind == kind)).scalar()
    if done:
        return False

    record_interaction(conn, msg, kind, {"answer": answer, "recipient": msg.recipient}, at=at)
    return True
