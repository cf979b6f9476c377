"""BODACC annonces commerciales reader: records of the open-data export become trigger events.

Accepted shapes (detected from the first character, `.gz` tolerated):
- a JSON array of records (the "export JSON"), read as a stream;
- JSON lines, one record a line;
- a single JSON object holding `results` (the explore API answer) or `records` (old API, each with
  `fields`);
- the CSV export: `;`-separated, a header of field names, nested blocks as JSON strings.

A record has `id`, `dateparution`, `familleavis` (`vente`, `creation`, `immatriculation`,
`modification`, `radiation`, `collective`, `dpc`, `conciliation`, `retablissement_professionnel`,
`divers`), `registre` (the SIREN, as a list `["894670793", "894 670 793"]` or a comma-joined string),
`numerodepartement`, `tribunal`, `ville`, `cp`, `commercant` and nested blocks that arrive as JSON
strings or objects: `listepersonnes` and `listeprecedentproprietaire` (`{"personne": {...} or [...]}`
with `typePersonne` `pm`/`pp`, `denomination`, `numeroImmatriculation.numeroIdentification`),
`listeetablissements`, `acte` (`vente.categorieVente`, `dateImmatriculation`, ...), `jugement`
(`famille`, `nature`, `date`).

Mapping: `vente` -> `takeover` for the buyer's business (announcements are written on the buyer's side:
the buyer is in `listepersonnes`, the seller in `listeprecedentproprietaire`); `creation` and
`immatriculation` -> `creation`; `collective` -> `collective_procedure` (safeguard, receivership and the
other judgments of a collective procedure), or `closure` when the judgment is a liquidation (or closes one
for lack of assets); `radiation` -> `closure`. Other families are counted as skipped. The announcement `id`
is the external id, so a record read twice is stored once. Names of natural persons (`pp`) never leave
this module.

Why a procedure is not a `critical_period`: a court judgment is a legal event in a hard moment, not a sales
moment (DOMAIN.md). `critical_period` campaigns pitch digital tools; a business under safeguard or
receivership must never get that pitch. `collective_procedure` reaches only a campaign that names it, with
the careful template pointing to prevention and support services (templates/messages/*/collective_procedure).
The payload says which procedure (`procedure`: sauvegarde, redressement, liquidation) when the judgment names it.
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from stdnum.fr import siren as stdnum_siren

from triggers.model import EventIn, Reject
from triggers.sirene import luhn_ok

SOURCE = "bodacc"

FAMILY_EVENT = {
    "vente": "takeover",
    "creation": "creation",
    "immatriculation": "creation",
    "collective": "collective_procedure",
    "radiation": "closure",
}
NESTED = ("listepersonnes", "listeetablissements", "acte", "jugement", "listeprecedentproprietaire")
_SIREN_CHARS = re.compile(r"[\s.\u00a0]")


class BodaccFormatError(ValueError):
    """The file is not readable as BODACC records (not JSON/CSV, truncated, wrong header)."""


@dataclass(frozen=True)
class Skipped:
    """A valid record that yields no event, and why (counted in the report)."""

    reason: str


@dataclass
class BodaccStats:
    read: int = 0
    rejected: int = 0


# --- opening and record streams ------------------------------------------------------------------


@contextmanager
def _open(path: Path) -> Iterator[IO[str]]:
    try:
        with open(path, "rb") as probe:
            gz = probe.read(2) == b"\x1f\x8b"
    except OSError as exc:
        raise BodaccFormatError(f"cannot open {path}: {exc.strerror or exc}") from exc
    stream: IO[str] = (
        gzip.open(path, "rt", encoding="utf-8-sig", newline="")
        if gz
        else open(path, encoding="utf-8-sig", newline="", buffering=1 << 20)  # noqa: SIM115
    )
    try:
        yield stream
    finally:
        stream.close()


def _first_char(stream: IO[str]) -> tuple[str, str]:
    # Returns the first non-blank character and everything read so far (to put back in front).
    head = ""
    while True:
        chunk = stream.read(4096)
        if not chunk:
            return "", head
        head += chunk
        stripped = head.lstrip()
        if stripped:
            return stripped[0], head


class _Prefixed(io.TextIOBase):
    """A text stream that first returns `head`, then the rest of `stream` (lets us sniff and go on)."""

    def __init__(self, head: str, stream: IO[str]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> str:  # type: ignore[override]
        if self._head:
            if size < 0:
                out, self._head = self._head + self._stream.read(), ""
                return out
            out, self._head = self._head[:size], self._head[size:]
            return out
        return self._stream.read(size)

    def readline(self, size: int = -1) -> str:  # type: ignore[override]
        if self._head:
            nl = self._head.find("\n")
            if nl >= 0:
                out, self._head = self._head[: nl + 1], self._head[nl + 1 :]
                return out
            out, self._head = self._head, ""
            return out + self._stream.readline()
        return self._stream.readline()

    def __iter__(self) -> Iterator[str]:  # type: ignore[override]
        while True:
            line = self.readline()
            if not line:
                return
            yield line


def _json_array(stream: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    """Items of a top-level JSON array, decoded one at a time (bounded memory)."""
    decoder = json.JSONDecoder()
    buf = stream.read(1 << 20).lstrip()
    if not buf.startswith("["):
        raise BodaccFormatError(f"{name}: expected a JSON array")
    pos, count, eof = 1, 0, False
    while True:
        # Skip blanks and separators; refill when the buffer runs low.
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) or eof:
                break
            more = stream.read(1 << 20)
            eof = not more
            buf, pos = buf[pos:] + more, 0
        if pos >= len(buf):
            raise BodaccFormatError(f"{name}: truncated JSON array after record {count}")
        if buf[pos] == "]":
            return
        while True:
            try:
                obj, end = decoder.raw_decode(buf, pos)
                break
            except json.JSONDecodeError as exc:
                more = "" if eof else stream.read(1 << 20)
                if not more:
                    raise BodaccFormatError(
                        f"{name}: truncated or invalid JSON after record {count} ({exc.msg})"
                    ) from exc
                buf, pos = buf[pos:] + more, 0
        count += 1
        yield count, obj
        pos = end
        if pos > (1 << 20):
            buf, pos = buf[pos:], 0


def _json_lines(stream: IO[str], name: str, start: int = 1) -> Iterator[tuple[int, Any]]:
    for number, line in enumerate(stream, start=start):
        text = line.strip()
        if not text:
            continue
        try:
            yield number, json.loads(text)
        except json.JSONDecodeError as exc:
            if number == 1:
                raise BodaccFormatError(f"{name}: not JSON lines ({exc.msg})") from exc
            yield number, _BadLine(text, exc.msg)


class _BadLine:
    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why


def _csv_records(stream: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    reader = csv.reader(stream, delimiter=";", strict=True)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise BodaccFormatError(f"{name}: empty file") from None
    except csv.Error as exc:
        raise BodaccFormatError(f"{name}: not a CSV file ({exc})") from exc
    lower = [h.lower() for h in header]
    if "id" not in lower or "familleavis" not in lower:
        raise BodaccFormatError(
            f"{name}: not a BODACC export (a ';'-separated header with id and familleavis was expected)"
        )
    width = len(lower)
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != width:
                yield (
                    reader.line_num,
                    _BadLine(";".join(row), f"wrong column count ({len(row)} instead of {width})"),
                )
                continue
            yield reader.line_num, dict(zip(lower, row, strict=True))
    except csv.Error as exc:
        raise BodaccFormatError(f"{name}: unreadable CSV near line {reader.line_num} ({exc})") from exc


def iter_raw(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """(line or record number, raw record) for every record of the file, whatever its shape."""
    path = Path(path)
    with _open(path) as stream:
        try:
            first, head = _first_char(stream)
            prefixed = _Prefixed(head, stream)
            if first == "":
                raise BodaccFormatError(f"{path.name}: empty file")
            if first == "[":
                yield from _json_array(prefixed, path.name)
            elif first == "{":
                yield from _json_object_or_lines(prefixed, path.name)
            else:
                yield from _csv_records(prefixed, path.name)
        except UnicodeDecodeError as exc:
            raise BodaccFormatError(f"{path.name}: not UTF-8 text") from exc
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            raise BodaccFormatError(f"{path.name}: truncated or damaged compressed file ({exc})") from exc


def _json_object_or_lines(stream: IO[str], name: str) -> Iterator[tuple[int, Any]]:
    first_line = stream.readline()
    try:
        first = json.loads(first_line)
    except json.JSONDecodeError:
        first = None
    if isinstance(first, dict) and not any(k in first for k in ("results", "records")):
        yield 1, first
        yield from _json_lines(stream, name, start=2)
        return
    # A pretty-printed or single-object answer: {"total_count": N, "results": [...]}.
    text = first_line + stream.read()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BodaccFormatError(f"{name}: not JSON ({exc.msg} at line {exc.lineno})") from exc
    items = whole.get("results", whole.get("records")) if isinstance(whole, dict) else None
    if not isinstance(items, list):
        raise BodaccFormatError(f"{name}: a JSON object without 'results' or 'records'")
    yield from enumerate(items, start=1)


# --- mapping -------------------------------------------------------------------------------------


def _siren_ok(digits: str) -> bool:
    # The Luhn fast path accepts only what stdnum accepts; stdnum decides the rest.
    return luhn_ok(digits) or bool(stdnum_siren.is_valid(digits))


def sirens_of(registre: Any) -> tuple[list[str], list[str]]:
    """(valid SIRENs, invalid values) found in a `registre` value (list, or comma-joined string)."""
    values = registre if isinstance(registre, list) else str(registre or "").split(",")
    valid: list[str] = []
    invalid: list[str] = []
    for value in values:
        compact = _SIREN_CHARS.sub("", str(value))
        if not compact:
            continue
        if len(compact) == 9 and compact.isdigit() and _siren_ok(compact):
            if compact not in valid:
                valid.append(compact)
        elif compact not in invalid:
            invalid.append(compact)
    return valid, invalid


def _nested(value: Any, field: str) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise _FieldError(field, f"invalid JSON in {field} ({exc.msg})") from exc
    return value


def _persons(block: Any) -> list[dict]:
    if not isinstance(block, dict):
        return []
    persons = block.get("personne")
    if isinstance(persons, dict):
        return [persons]
    return [p for p in persons if isinstance(p, dict)] if isinstance(persons, list) else []


def _person_siren(person: dict) -> str | None:
    immat = person.get("numeroImmatriculation")
    number = immat.get("numeroIdentification") if isinstance(immat, dict) else None
    if not number:
        return None
    valid, _ = sirens_of(str(number))
    return valid[0] if valid else None


def procedure_of(nature: str) -> str | None:
    """The collective procedure a judgment's `nature` names: liquidation, redressement, sauvegarde, or None.

    Liquidation first: "conversion du redressement en liquidation judiciaire" is a liquidation, and a closing
    "pour insuffisance d'actif" ends a liquidation.
    """
    text = nature.lower()
    if "liquidation" in text or "insuffisance d'actif" in text or "insuffisance d’actif" in text:
        return "liquidation"
    if "redressement" in text:
        return "redressement"
    if "sauvegarde" in text:
        return "sauvegarde"
    return None


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


class _FieldError(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field, self.reason = field, reason


def map_record(raw: Any, line: int | None = None) -> EventIn | Skipped | Reject:
    """The event one BODACC record means, a Skipped with its reason, or a Reject naming the field."""
    if isinstance(raw, _BadLine):
        return Reject(line=line, field="record", reason=raw.why, raw=raw.text[:500])
    if not isinstance(raw, dict):
        return Reject(line=line, field="record", reason="not a JSON object", raw=str(raw)[:500])
    rec = raw.get("fields") if isinstance(raw.get("fields"), dict) else raw
    try:
        return _map(rec, line)
    except _FieldError as err:
        text = json.dumps(raw, ensure_ascii=False, default=str)[:500]
        return Reject(line=line, field=err.field, reason=err.reason, raw=text)


def _map(rec: dict, line: int | None) -> EventIn | Skipped:
    ext_id = str(rec.get("id") or "").strip()
    if not ext_id:
        raise _FieldError("id", "missing announcement id")
    family = str(rec.get("familleavis") or "").strip().lower()
    if not family:
        raise _FieldError("familleavis", "missing familleavis")
    published = _date(rec.get("dateparution"))
    if published is None:
        raise _FieldError("dateparution", f"unreadable date {rec.get('dateparution')!r}")
    kind = FAMILY_EVENT.get(family)
    if kind is None:
        return Skipped(f"family {family}")

    sirens, invalid = sirens_of(rec.get("registre"))
    personnes = _persons(_nested(rec.get("listepersonnes"), "listepersonnes"))
    payload: dict[str, Any] = {
        "famille": family,
        "typeavis": rec.get("typeavis") or None,
        "tribunal": rec.get("tribunal") or None,
        "numerodepartement": rec.get("numerodepartement") or None,
        "cp": rec.get("cp") or None,
        "ville": rec.get("ville") or None,
        "dateparution": published.isoformat(),
    }
    occurred = published
    siren: str | None

    if family == "vente":
        sellers = _persons(_nested(rec.get("listeprecedentproprietaire"), "listeprecedentproprietaire"))
        seller_sirens = [s for s in (_person_siren(p) for p in sellers) if s]
        buyer = next((s for s in (_person_siren(p) for p in personnes) if s), None)
        siren = buyer or next((s for s in sirens if s not in seller_sirens), None)
        if siren is None:
            if invalid:
                raise _FieldError("registre", f"invalid SIREN {invalid[0]!r}")
            return Skipped("vente without the buyer's SIREN")
        acte = _nested(rec.get("acte"), "acte")
        vente = acte.get("vente") if isinstance(acte, dict) else None
        if isinstance(vente, dict) and vente.get("categorieVente"):
            payload["categorie_vente"] = vente["categorieVente"]
        if seller_sirens:
            payload["seller_siren"] = seller_sirens[0]
    else:
        siren = sirens[0] if sirens else next((s for s in (_person_siren(p) for p in personnes) if s), None)
        if siren is None:
            if invalid:
                raise _FieldError("registre", f"invalid SIREN {invalid[0]!r}")
            raise _FieldError("registre", "no SIREN in the record")
        if family == "collective":
            jugement = _nested(rec.get("jugement"), "jugement")
            if isinstance(jugement, dict):
                nature = str(jugement.get("nature") or "")
                payload["jugement"] = nature or None
                payload["procedure"] = procedure_of(nature)
                if payload["procedure"] == "liquidation":
                    kind = "closure"  # a liquidation ends the business: it stops all outreach
                occurred = _date(jugement.get("date")) or published
        elif family in ("creation", "immatriculation"):
            acte = _nested(rec.get("acte"), "acte")
            if isinstance(acte, dict):
                occurred = (
                    _date(acte.get("dateCommencementActivite"))
                    or _date(acte.get("dateImmatriculation"))
                    or published
                )

    # The name only when the business is a legal person: a natural person's name is personal data.
    person = next((p for p in personnes if _person_siren(p) == siren), personnes[0] if personnes else None)
    if person and person.get("typePersonne") == "pm" and person.get("denomination"):
        payload["name"] = person["denomination"]
    return EventIn(
        source=SOURCE,
        external_id=ext_id,
        type=kind,
        occurred_on=occurred,
        siren=siren,
        payload={k: v for k, v in payload.items() if v is not None},
    )


def read_bodacc(
    path: str | os.PathLike[str],
    *,
    on_reject: Callable[[Reject], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
    stats: BodaccStats | None = None,
) -> Iterator[EventIn]:
    """Events of a BODACC file, in file order; rejects and skips go to the callbacks."""
    stats = stats if stats is not None else BodaccStats()
    for line, raw in iter_raw(path):
        stats.read += 1
        out = map_record(raw, line)
        if isinstance(out, EventIn):
            yield out
        elif isinstance(out, Skipped):
            if on_skip:
                on_skip(out)
        else:
            stats.rejected += 1
            if on_reject:
                on_reject(out)
