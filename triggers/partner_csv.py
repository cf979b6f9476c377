"""Partner CSV files: the same events as the partner API, one a row, validated the same way.

Columns (header row required, names case-insensitive, order free; the first four are required):

| column         | content                                                                      |
|----------------|------------------------------------------------------------------------------|
| `external_id`  | the partner's own id for the event, unique per partner (idempotency key)     |
| `type`         | `creation`, `first_hire`, `takeover`, `critical_period`, `consolidation`,     |
|                | `closure`, `activity_change`, `deadline`, or a conversion: `offer_enrolled`, |
|                | `diagnostic_completed`, `ambassador_met`, or an adoption: `tool_adopted`      |
| `siret`        | 14 digits, spaces allowed, checksum verified                                 |
| `occurred_on`  | `YYYY-MM-DD` or `DD/MM/YYYY`, not in the future                              |
| `name`         | business name (optional)                                                     |
| `naf_code`     | NAF rév. 2 sub-class, `43.22A` or `4322A` (optional)                          |
| `commune_code` | INSEE commune code, `35238` (optional)                                       |
| `email`        | contact e-mail (optional)                                                    |
| `phone`        | French phone number (optional)                                               |
| `street`, `postal_code`, `city` | postal address (optional)                                   |
| `consent`      | `oui`/`non`, `1`/`0`, `true`/`false`, `yes`/`no` (empty: no): the owner    |
|                | agreed to be called, or is an existing client                               |
| `category`     | for `tool_adopted` only (required there): `quotes_invoices`,                 |
|                | `einvoicing_platform`, `payment`, `booking`, `online_visibility`,            |
|                | `management`, or its French label (`paiement`, `visibilité en ligne`...)     |
| `payload.<f>`  | a detail for the event's payload (optional, any number): kept when `<f>` is  |
|                | declared for the row's type (`triggers.payload_schema`), else dropped and   |
|                | counted ("champs non déclarés retirés"), never refused                      |

Separator `;` or `,` (sniffed from the header line), UTF-8 with or without BOM, quoted fields allowed.
Each row goes through the API's own schema (`triggers.partner_api.validate_item`), so a file and a
POST accept and refuse exactly the same things; a bad row is rejected with its line, field and reason
and the file goes on.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triggers.model import EventIn, Reject
from triggers.partner_api import validate_item
from triggers.payload_schema import Dropped

COLUMNS = (
    "external_id",
    "type",
    "siret",
    "occurred_on",
    "name",
    "naf_code",
    "commune_code",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "consent",
)
# Optional columns outside the usual header (files written before them keep their exact column count).
EXTRA_COLUMNS = ("category",)
KNOWN_COLUMNS = COLUMNS + EXTRA_COLUMNS
# Columns `payload.<field>`: details for the event's payload, only the declared ones kept.
PAYLOAD_PREFIX = "payload."
REQUIRED = COLUMNS[:4]
BUSINESS_COLUMNS = ("name", "naf_code", "commune_code")
CONTACT_COLUMNS = ("email", "phone", "street", "postal_code", "city")
_YES = {"1", "oui", "o", "true", "vrai", "yes", "y", "x"}
_NO = {"", "0", "non", "n", "false", "faux", "no"}


class PartnerFileError(ValueError):
    """The file cannot be read as a partner CSV (encoding, header)."""


@dataclass
class PartnerStats:
    read: int = 0
    rejected: int = 0
    dropped: Dropped = field(default_factory=Dropped)  # undeclared payload fields dropped


def sniff_delimiter(header_line: str) -> str:
    """`;` or `,`, whichever splits the header line into more known columns."""

    def score(sep: str) -> int:
        return sum(1 for c in header_line.split(sep) if c.strip().strip('"').lower() in KNOWN_COLUMNS)

    return ";" if score(";") >= score(",") else ","


def row_to_item(row: dict[str, str]) -> dict[str, Any] | Reject:
    """The API item of one CSV row (before validation); a Reject for a bad consent value."""
    item: dict[str, Any] = {k: row.get(k, "").strip() for k in REQUIRED}
    business = {k: row[k].strip() for k in BUSINESS_COLUMNS if row.get(k, "").strip()}
    contact: dict[str, Any] = {k: row[k].strip() for k in CONTACT_COLUMNS if row.get(k, "").strip()}
    consent = row.get("consent", "").strip().lower()
    if consent in _YES:
        contact["consent"] = True
    elif consent not in _NO:
        return Reject(line=None, field="consent", reason=f"consent illisible: {consent!r} (oui/non)")
    if row.get("category", "").strip():
        item["category"] = row["category"].strip()
    payload = {k.removeprefix(PAYLOAD_PREFIX): v.strip() for k, v in row.items()
               if k.startswith(PAYLOAD_PREFIX) and k != PAYLOAD_PREFIX and v.strip()}
    if payload:
        item["payload"] = payload
    if business:
        item["business"] = business
    if contact:
        item["contact"] = contact
    return item


def read_partner_csv(
    path: str | os.PathLike[str],
    *,
    source: str,
    contact_source: str,
    today: dt.date,
    on_reject: Callable[[Reject], None] | None = None,
    stats: PartnerStats | None = None,
) -> Iterator[EventIn]:
    """Valid events of a partner file, in file order; rejects go to `on_reject`; `today` is the local date
    (an event dated after tomorrow is refused).

    The partner's scope is checked by `read_partner_chunks`, a chunk of rows at a time.
    """
    stats = stats if stats is not None else PartnerStats()
    for line, raw, out in _rows(Path(path), source, contact_source, stats, today):
        if isinstance(out, Reject):
            _report(out, line, raw, stats, on_reject)
            continue
        yield out


def read_partner_chunks(
    path: str | os.PathLike[str],
    *,
    source: str,
    contact_source: str,
    check: Callable[[Sequence[EventIn]], Sequence[Reject | None]],
    today: dt.date,
    chunk_size: int = 500,
    on_reject: Callable[[Reject], None] | None = None,
    stats: PartnerStats | None = None,
) -> Iterator[list[EventIn]]:
    """Valid events of a partner file in chunks of up to `chunk_size` rows, each chunk checked at once.

    `check` gets the chunk's valid events and says for each why it is refused, or None (the partner's
    scope, with one store read per chunk rather than one per row). Rejects keep their line, field and
    reason and reach `on_reject` in file order, as with `read_partner_csv`. Store each chunk before
    asking for the next: the next chunk's check then sees it, as a row-by-row import would.
    """
    stats = stats if stats is not None else PartnerStats()
    rows: list[tuple[int, str, EventIn | Reject]] = []

    def checked() -> list[EventIn]:
        valid = [out for _, _, out in rows if isinstance(out, EventIn)]
        verdicts = iter(check(valid) if valid else ())
        events = []
        for line, raw, out in rows:
            refused = next(verdicts) if isinstance(out, EventIn) else out
            if refused is not None:
                _report(refused, line, raw, stats, on_reject)
            else:
                events.append(out)
        rows.clear()
        return events

    for row in _rows(Path(path), source, contact_source, stats, today):
        rows.append(row)
        if len(rows) >= chunk_size:
            yield checked()
    if rows:
        yield checked()


class _Lines:
    """The lines of a text stream as the CSV reader pulls them, kept until taken (the current row's text),
    and whether the stream has ended (the reader asked past the last line)."""

    def __init__(self, stream) -> None:
        self._lines = iter(stream)
        self._taken: list[str] = []
        self.ended = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.ended = True
            raise
        self._taken.append(line)
        return line

    def take(self) -> str:
        text = "".join(self._taken)
        self._taken.clear()
        return text


def _open_quote(text: str, delimiter: str) -> bool:
    """True when `text` (one or more whole rows) ends inside a quoted field, read as the csv module does
    (`""` is a quote inside a quoted field; a quote elsewhere than at a field's start is plain text)."""
    start, quoted, closing = True, False, False
    for char in text:
        if quoted:
            if closing:
                closing = False
                if char != '"':  # the quote closed the field
                    quoted = False
                    start = char in (delimiter, "\n", "\r")
            elif char == '"':
                closing = True
        elif start and char == '"':
            quoted, start = True, False
        else:
            start = char in (delimiter, "\n", "\r")
    return quoted and not closing


def _report(
    reject: Reject, line: int, raw: str, stats: PartnerStats, on_reject: Callable[[Reject], None] | None
) -> None:
    stats.rejected += 1
    if on_reject:
        on_reject(Reject(line=line, field=reject.field, reason=reject.reason, raw=raw))


def _rows(
    path: Path, source: str, contact_source: str, stats: PartnerStats, today: dt.date
) -> Iterator[tuple[int, str, EventIn | Reject]]:
    """(line, raw text, event or reject) for each non-blank row, in file order; counts `stats.read`."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as stream:
            header_line = stream.readline()
            if not header_line.strip():
                raise PartnerFileError(f"{path.name}: empty file (a header row is expected)")
            delimiter = sniff_delimiter(header_line)
            header = [h.strip().lower() for h in next(csv.reader([header_line], delimiter=delimiter))]
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c and c not in KNOWN_COLUMNS and not c.startswith(PAYLOAD_PREFIX)]
            if missing or unknown:
                parts = []
                if missing:
                    parts.append("missing columns: " + ", ".join(missing))
                if unknown:
                    parts.append("unknown columns: " + ", ".join(unknown))
                raise PartnerFileError(f"{path.name}: {'; '.join(parts)} (expected: {';'.join(COLUMNS)})")
            lines = _Lines(stream)
            reader = csv.reader(lines, delimiter=delimiter)
            ended = 1  # the last physical line of the previous row (the header)
            for values in reader:
                line = reader.line_num + 1  # the header line was read apart
                first_line, ended = ended + 1, line
                text = lines.take()
                if not any(v.strip() for v in values):
                    continue
                stats.read += 1
                raw = delimiter.join(values)[:500]
                if lines.ended and _open_quote(text, delimiter):
                    # The reader closes a field left open at the end of the file without a word: the file
                    # was cut inside this row, whose last field is not what the partner sent.
                    field = header[min(len(values), len(header)) - 1] if values else "row"
                    reason = ("ligne coupée: le fichier s'arrête dans un champ entre guillemets jamais refermé "
                              "(fichier tronqué ?); renvoyez la ligne complète")
                    yield first_line, raw, Reject(line=first_line, field=field, reason=reason, raw=raw)
                    continue
                if len(values) != len(header):
                    reason = f"wrong column count ({len(values)} instead of {len(header)})"
                    yield line, raw, Reject(line=line, field="row", reason=reason, raw=raw)
                    continue
                item = row_to_item(dict(zip(header, values, strict=True)))
                out = item if isinstance(item, Reject) else validate_item(item, source, contact_source, line,
                                                                          dropped=stats.dropped, today=today)
                yield line, raw, out
    except UnicodeDecodeError as exc:
        raise PartnerFileError(f"{path.name}: not UTF-8 text (save the file as « CSV UTF-8 »)") from exc
    except csv.Error as exc:
        raise PartnerFileError(f"{path.name}: unreadable CSV ({exc})") from exc
    except OSError as exc:
        raise PartnerFileError(f"cannot open {path}: {exc.strerror or exc}") from exc
