"""Columnar readers of the two Sirene stocks, `StockEtablissement` and `StockUniteLegale`: pyarrow's CSV reader
in record batches.

Why: the national stocks hold 43.9 million establishments and about 29 million legal units; the row-by-row readers
(`triggers.sirene.SireneReader`, `triggers.sirene_ul.UniteLegaleReader`) spend about 6 µs a row in Python, half of
it in the csv module. Here the file is tokenised and converted by Arrow's C++ reader in batches of about 4 MB
(memory stays bounded by a few batches), and every check is done on whole columns: the SIRET or SIREN key with a
vectorised Luhn (rows that fail it go to python-stdnum, so the La Poste exception gives the same verdict), the NAF,
commune, date, category and year checks on the distinct values only (each value checked once per file, by the
row reader's own rule).

Same contracts as `triggers.sirene.chunked_records` and `triggers.sirene_ul.chunked_unites`: the same records, the
same rejects (line, field, reason, raw text) and the same chunk boundaries, so an ingest gives the same
businesses, events, categories and report either way (tests/integration/test_ingest_columnar.py holds both paths
to that). Line numbers are physical lines, multi-line quoted values included, as the csv module counts them. One
difference: a row whose every field is empty (a line of commas only) reads as a blank line, as Arrow gives both
the same.

pyarrow is an optional dependency (`pip install declic-tpe[national]`); without it the ingest keeps the
row-by-row readers.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import os
import sys
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stdnum.fr import siren as stdnum_siren
from stdnum.fr import siret as stdnum_siret

from triggers.model import Reject
from triggers.sirene import (
    BUSINESS_ROW,
    CATEGORIES,
    NAF_UNKNOWN,
    ND,
    SKIP_CLOSED,
    SKIP_NOT_TPE,
    SKIP_REPEATED,
    STREET_TYPES,
    TPE_TRANCHES,
    TRANCHES,
    FirstLoadRows,
    Lookups,
    Record,
    SireneFormatError,
    SireneReader,
    StockCsv,
    built_chunks,
    zip_member,
)
from triggers.sirene_ul import (
    BAD_SIREN,
    LEGAL_FORM,
    WRONG_WIDTH,
    UlRecord,
    UniteLegaleReader,
    category_of,
    legal_form_of,
    unknown_category,
    unreadable_legal_form,
    unreadable_year,
    year_of,
)

try:  # optional: the [national] extra
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv
    import pyarrow.ipc  # noqa: F401 - pa.ipc
except ImportError:  # pragma: no cover - exercised where pyarrow is not installed
    pa = pc = pv = None  # type: ignore[assignment]

# Bytes of CSV per record batch (about 21,000 rows of the stock). Arrow's reader holds 150 MB while it reads with
# 4 MB blocks, 206 MB with 8 MB ones; below 4 MB the per-batch work in Python starts to show.
BLOCK_SIZE = 4 << 20


# A Sirene record's fields (`triggers.sirene.Record`, R_* order) as Arrow column names, and a legal unit's
# (`triggers.sirene_ul.UlRecord`).
RECORD_FIELDS = ("siret", "name", "naf", "naf25", "commune", "tranche", "employer", "creation", "state", "dnc",
                 "street", "postal", "city", "since", "head", "category", "form")
_UL_FIELDS = ("siren", "category", "year", "form")


def available() -> bool:
    """True when pyarrow is installed (the `national` extra)."""
    return pa is not None


# --- vectorised Luhn keys (SIRET, SIREN) ----------------------------------------------------------

_TAKE: dict[int, list[Any]] = {}


def _positions(width: int, n: int) -> list[Any]:
    # take() indices of digit p of each `width`-byte value, built once (for the largest batch seen) and sliced.
    take = _TAKE.get(width)
    if take is None or len(take[0]) < n:
        size = max(n, 65_536)
        take = _TAKE[width] = [pa.array(range(p, width * size, width), pa.int32()) for p in range(width)]
    return [ix.slice(0, n) for ix in take]


def _doubled(d: Any) -> Any:
    # Luhn's doubled digit: 2d, minus 9 when that is 10 or more.
    return pc.subtract(pc.multiply(d, 2), pc.multiply(pc.cast(pc.greater_equal(d, 5), pa.int16()), 9))


def _digits(values: Any, width: int) -> tuple[Any, list[Any]]:
    """(values made of exactly `width` ASCII digits, the arrays of their digits by position; other values read as
    zeros)."""
    n = len(values)
    shape = pc.and_(pc.equal(pc.binary_length(values), width), pc.ascii_is_decimal(values))
    safe = pc.if_else(shape, values, "0" * width)
    fixed = safe.cast(pa.binary(width))
    data = pa.Array.from_buffers(pa.uint8(), width * n, [None, fixed.buffers()[1]], offset=fixed.offset * width)
    digits = pc.cast(pc.subtract(data, 48), pa.int16())
    return shape, [pc.take(digits, ix) for ix in _positions(width, n)]


def _luhn_sum(d: list[Any], width: int) -> Any:
    # From the right: the last digit as is, the one before doubled, and so on.
    total = d[width - 1]
    for p in range(width - 1):
        total = pc.add(total, _doubled(d[p]) if (width - 1 - p) % 2 else d[p])
    return total


def siret_fast_ok(sirets: Any) -> Any:
    """Boolean array: 14 ASCII digits passing the Luhn test of the SIREN and of the SIRET.

    A False is not a verdict: the caller asks python-stdnum about those rows (La Poste's units, whose
    SIRET follows another rule), exactly as `triggers.sirene.siret_is_valid` does row by row.
    """
    if len(sirets) == 0:
        return pa.array([], pa.bool_())
    shape, d = _digits(sirets, 14)
    return pc.and_(shape, pc.and_(_tens(_luhn_sum(d[:9], 9)), _tens(_luhn_sum(d, 14))))


def siren_fast_ok(sirens: Any) -> Any:
    """Boolean array: 9 ASCII digits passing the Luhn test; a False goes to python-stdnum, as for SIRETs."""
    if len(sirens) == 0:
        return pa.array([], pa.bool_())
    shape, d = _digits(sirens, 9)
    return pc.and_(shape, _tens(_luhn_sum(d, 9)))


def _tens(total: Any) -> Any:
    # total % 10 == 0 (integer division: pc.divide truncates on integers)
    return pc.equal(pc.subtract(total, pc.multiply(pc.divide(total, 10), 10)), 0)


# --- reading a stock in numbered batches --------------------------------------------------------


def _source(path: Path, stack: list) -> Any:
    with open(path, "rb") as probe:
        magic = probe.read(4)
    if magic[:2] == b"\x1f\x8b":
        return pa.CompressedInputStream(pa.OSFile(str(path)), "gzip")
    if magic == b"PK\x03\x04":
        archive = zipfile.ZipFile(path)
        stack.append(archive)
        raw = archive.open(zip_member(archive, path.name))
        stack.append(raw)
        return raw
    return pa.OSFile(str(path))


def _null_if_empty(arr: Any) -> Any:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, pa.string()), arr)


class _Lookup:
    """Per-file results of a rule on the distinct values already seen (NAF codes, communes, dates), kept as Arrow
    arrays (each value and its results at the same place) so that only the values a batch brings for the first time
    reach Python. A batch's column is dictionary-encoded, its distinct values found among those known (one hash
    table of them a batch: a national file brings 37,000 communes) and their results taken back onto the rows.

    `rule(value)` gives a tuple of results of `types`; a null value gets null results."""

    def __init__(self, rule: Callable[[str], tuple], types: Sequence[Any]) -> None:
        self.rule = rule
        self.types = types
        self.known = pa.array([], pa.string())  # every value seen so far
        self.results = [pa.array([], t) for t in types]  # their results, at the same places

    def take(self, arr: Any) -> list[Any]:
        """The results of each row's value, one array per result."""
        encoded = pc.dictionary_encode(arr)
        values = encoded.dictionary
        at = pc.index_in(values, value_set=self.known)
        if at.null_count:
            new = values.filter(pc.is_null(at))
            self.known = pa.concat_arrays([self.known, new])
            found = list(zip(*map(self.rule, new.to_pylist()), strict=True))
            self.results = [pa.concat_arrays([old, pa.array(column, t)])
                            for old, column, t in zip(self.results, found, self.types, strict=True)]
            at = pc.index_in(values, value_set=self.known)
        indices = encoded.indices
        return [pc.take(pc.take(column, at), indices) for column in self.results]


class _Checked(_Lookup):
    """`_Lookup` of a check: `mask(arr)` is True where the value passes."""

    def __init__(self, check: Callable[[str], Any]) -> None:
        super().__init__(lambda v: (bool(check(v)),), [pa.bool_()])

    def mask(self, arr: Any) -> Any:
        return self.take(arr)[0]


class _Mapped:
    """Per-file cache of what a rule makes of each distinct value: `column(arr)` -> (kept value or null, good)."""

    def __init__(self, rule: Callable[[str], tuple[str | None, bool]]) -> None:
        self.rule = rule
        self.known: dict[str, tuple[str | None, bool]] = {}

    def column(self, arr: Any) -> tuple[Any, Any]:
        values = pc.unique(arr)
        known = self.known
        out = [known.get(v) or known.setdefault(v, self.rule(v)) for v in values.to_pylist()]
        at = pc.index_in(arr, value_set=values)
        kept = pc.take(pa.array([k for k, _ok in out], pa.string()), at)
        good = pc.take(pa.array([ok for _k, ok in out], pa.bool_()), at)
        return kept, good


def _date_ok(text: str) -> bool:
    # The row reader's rule: empty or [ND] is no date; otherwise 10 characters that date.fromisoformat reads.
    if text == "" or text == ND:
        return True
    if len(text) != 10:
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


@dataclass
class _Numbered:
    """One Arrow batch of a stock with what the row reader would know of its rows."""

    batch: Any
    lines: Sequence[int]  # the physical line each row of the batch ends on
    wrong_width: list[tuple[int, list[str]]]  # rows Arrow took out (wrong column count): (line, fields)
    alive: Any  # boolean array: the batch's rows that are rows (a blank line is not)
    read: Sequence[int]  # lines of the rows read (blank lines left out, rows of the wrong width in)
    masked_columns: list[int]  # the columns where some value may be INSEE's mask, [ND] (a byte search)

    def lines_of(self, mask: Any) -> Any:
        """The lines of the batch's rows where `mask` is true, as an Arrow int64 array."""
        at = pc.indices_nonzero(mask)
        lines = self.lines
        if isinstance(lines, range):
            return pc.add(at.cast(pa.int64()), lines.start)
        return pc.take(pa.array(lines, pa.int64()), at)


class _ArrowStock:
    """A Sirene stock (either kind) read by Arrow's CSV reader in record batches of BLOCK_SIZE bytes, numbered
    with the physical lines the csv module would give (multi-line quoted values included). A file that stops
    being readable raises `SireneFormatError` in the words of `stock` (its row reader) near the line reached."""

    def __init__(self, stock: StockCsv, ncol: int) -> None:
        self.stock = stock
        self.ncol = ncol
        self.invalid: list[tuple[int, str, int]] = []  # (record number, text, columns) from Arrow
        self.line = 1  # physical lines consumed so far

    def _on_invalid(self, row: Any) -> str:
        self.invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    def _unreadable(self, exc: BaseException) -> SireneFormatError:
        stock = self.stock
        if isinstance(exc, pa.ArrowInvalid):
            words = stock.NOT_UTF8 if "utf8" in str(exc).lower() else stock.BAD_CSV
        else:
            words = stock.BAD_ARCHIVE
        return SireneFormatError(f"{stock.path.name}: {words.format(line=self.line + 1, exc=exc)}")

    def _raw_batches(self) -> Iterator[Any]:
        stack: list = []
        names = [f"c{i}" for i in range(self.ncol)]
        try:
            source = _source(self.stock.path, stack)
            reader = pv.open_csv(
                source,
                read_options=pv.ReadOptions(
                    use_threads=False, block_size=BLOCK_SIZE, skip_rows=1, column_names=names
                ),
                # newlines_in_values: without it Arrow cuts its blocks at any line end, and a quoted value holding a
                # line break across two blocks stops the whole file ("parser got out of sync with chunker").
                parse_options=pv.ParseOptions(ignore_empty_lines=False, newlines_in_values=True,
                                             invalid_row_handler=self._on_invalid),
                convert_options=pv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            yield from reader
        except (pa.ArrowInvalid, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise self._unreadable(exc) from exc
        finally:
            for item in reversed(stack):
                item.close()
        if self.invalid:  # rows of the wrong width at the very end leave no batch of their own
            empty = pa.array([], pa.string())
            yield pa.RecordBatch.from_arrays([empty] * self.ncol, names)

    def batches(self) -> Iterator[_Numbered]:
        record_no = 1  # Arrow's record counter: the header is record 1
        for batch in self._raw_batches():
            # A value holding a line break or [ND] is rare: one byte search over each column's data finds them.
            datas = [b"" if (d := c.buffers()[2]) is None else d.to_pybytes() for c in batch.columns]
            newlines = [c for c, data in zip(batch.columns, datas, strict=True) if b"\n" in data]
            lines, invalid_rows = self._lines(batch, record_no, self.line, newlines)
            record_no += batch.num_rows + len(invalid_rows)
            self.line = max([self.line, *lines[-1:], *(r[0] for r in invalid_rows)])
            wrong: list[tuple[int, list[str]]] = []
            for ln, text, _columns in invalid_rows:
                fields = next(csv.reader(io.StringIO(text)), [])
                if fields:  # a blank line is not a row
                    wrong.append((ln, fields))
            alive = self._not_blank(batch)
            if isinstance(lines, range) and pc.all(alive).as_py():
                read: Sequence[int] = lines
            else:
                read = [ln for ln, k in zip(lines, alive.to_pylist(), strict=True) if k]
            if wrong:
                read = sorted([*read, *(ln for ln, _f in wrong)])
            nd = ND.encode()
            yield _Numbered(batch, lines, wrong, alive, read, [i for i, data in enumerate(datas) if nd in data])

    @staticmethod
    def _not_blank(batch: Any) -> Any:
        # Blank lines come out of Arrow as rows of empty fields (the first column is empty on every one).
        n = batch.num_rows
        if n == 0:
            return pa.array([], pa.bool_())
        cols = batch.columns
        empty_first = pc.equal(cols[0], "")
        if pc.any(empty_first).as_py():
            blank = [i for i in pc.indices_nonzero(empty_first).to_pylist() if all(c[i].as_py() == "" for c in cols)]
            if blank:
                mask = [True] * n
                for i in blank:
                    mask[i] = False
                return pa.array(mask)
        return pa.array([True] * n)

    def _lines(self, batch: Any, record_no: int, line: int, newlines: list[Any]
               ) -> tuple[Sequence[int], list[tuple[int, str, int]]]:
        """Physical end lines of the batch's rows, and its invalid rows as (end line, text, columns); `newlines`: the
        batch's columns where some value holds a line break."""
        n = batch.num_rows
        # Invalid rows (wrong column count) are taken out of the batch by Arrow; their record numbers
        # place them among the valid ones.
        invalid = self.invalid
        mine: list[tuple[int, str, int]] = []
        last = record_no + n
        # `<= last + 1`: rows of the wrong width right after the batch's last valid row come next in the file,
        # whichever batch Arrow counts them in.
        while invalid and invalid[0][0] <= last + 1:
            mine.append(invalid.pop(0))
            last += 1
        if not mine and not newlines:
            return range(line + 1, line + 1 + n), []
        per_row = [0] * n
        if newlines:
            for col in newlines:
                for i, c in enumerate(pc.count_substring(col, "\n").to_pylist()):
                    per_row[i] += c
        lines: list[int] = []
        out: list[tuple[int, str, int]] = []
        pending = iter(mine)
        nxt = next(pending, None)
        rec = record_no
        i = 0
        while i < n or nxt is not None:
            rec += 1
            if nxt is not None and nxt[0] == rec:
                line += 1 + nxt[1].count("\n")
                out.append((line, nxt[1], nxt[2]))
                nxt = next(pending, None)
                continue
            line += 1 + per_row[i]
            lines.append(line)
            i += 1
        return lines, out


class _Lines:
    """Line numbers in file order, kept as they come: per batch a range, a list or an Arrow int64 array (the lines
    of the rows a mask keeps, without making a Python int of each)."""

    def __init__(self) -> None:
        self.segments: list[Any] = []
        self.size = 0

    def add(self, segment: Any) -> None:
        if len(segment):
            self.segments.append(segment)
            self.size += len(segment)

    def at(self, k: int) -> int:
        """The k-th line (from 0)."""
        for seg in self.segments:
            if k < len(seg):
                line = seg[k]
                return line if isinstance(line, int) else line.as_py()
            k -= len(seg)
        raise IndexError(k)

    def take_upto(self, upto: int) -> int:
        """Remove the lines up to `upto` (included); returns how many there were."""
        taken = 0
        segments = self.segments
        while segments:
            seg = segments[0]
            last = seg[-1]
            if (last if isinstance(last, int) else last.as_py()) <= upto:
                taken += len(seg)
                segments.pop(0)
                continue
            if isinstance(seg, (range, list)):
                k = bisect.bisect_right(seg, upto)
                segments[0] = seg[k:]
            else:
                k = pc.sum(pc.less_equal(seg, upto)).as_py() or 0
                segments[0] = seg.slice(k)
            taken += k
            break
        self.size -= taken
        return taken


class _Records:
    """Records in file order, kept as the Arrow batches they came in (a record's fields as columns) until a chunk
    is cut: a first load's builder takes them as they are (`FirstLoadColumns`), other readers as tuples."""

    def __init__(self) -> None:
        self.batches: list[Any] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, batch: Any) -> None:
        if batch.num_rows:
            self.batches.append(batch)
            self.size += batch.num_rows

    def cut(self, k: int) -> Any:
        """The first k records as an Arrow table (None when there are none); the rest stay."""
        if not self.batches or k <= 0:
            return None
        table = pa.Table.from_batches(self.batches)
        self.batches = table.slice(k).to_batches()
        self.size = max(0, self.size - k)
        return table.slice(0, k)


def _tuples(table: Any) -> list[tuple]:
    """An Arrow table's rows as tuples (None: no rows)."""
    if table is None:
        return []
    return list(zip(*(c.to_pylist() for c in table.columns), strict=True))


class _Pending:
    """What a reader found and has not handed over yet, each in file order: records and their lines, rejects,
    the lines of the rows read, and the lines of the rows dropped (per reason)."""

    def __init__(self, reasons: Sequence[str] = ()) -> None:
        self.recs = _Records()
        self.rec_lines = _Lines()
        self.rejects: list[Reject] = []
        self.rows = _Lines()  # rows read
        self.dropped: dict[str, _Lines] = {r: _Lines() for r in reasons}

    def add(self, numbered: _Numbered, keep: Any, recs: Any) -> None:
        """A batch's rows read, and the records of its rows kept (`recs`, an Arrow batch or None: none; `keep`: a
        boolean array of the rows kept, or None: all)."""
        self.rows.add(numbered.read)
        if recs is not None:
            self.recs.add(recs)
            self.rec_lines.add(numbered.lines if keep is None else numbered.lines_of(keep))

    def chunks(self, chunk_size: int, last: bool = False) -> Iterator[tuple[Any, list[Reject], int, dict]]:
        """(records as an Arrow table or None, rejects, rows read, rows dropped by reason) for each full chunk (and
        the rest when `last`)."""
        self.rejects.sort(key=lambda r: r.line)
        while len(self.recs) >= chunk_size:
            upto = self.rec_lines.at(chunk_size - 1)
            yield self.recs.cut(chunk_size), *self._cut(upto)
        if last:
            yield self.recs.cut(len(self.recs)), *self._cut(sys.maxsize)

    def _cut(self, upto: int) -> tuple[list[Reject], int, dict[str, int]]:
        self.rec_lines.take_upto(upto)
        read = self.rows.take_upto(upto)
        dropped = {reason: lines.take_upto(upto) for reason, lines in self.dropped.items()}
        nr = bisect.bisect_right([r.line for r in self.rejects], upto)
        out = self.rejects[:nr]
        del self.rejects[:nr]
        return out, read, dropped


def _fail(numbered: _Numbered, alive: Any, bad: Any, rejects: list[Reject], reject: Callable[[int, list[str]], Reject]
          ) -> Any:
    """Reject the rows still alive that fail a check (`bad`); returns the rows still alive."""
    hit = pc.and_(alive, bad)
    if pc.any(hit).as_py():
        cols = numbered.batch.columns
        for i in pc.indices_nonzero(hit).to_pylist():
            rejects.append(reject(numbered.lines[i], [c[i].as_py() for c in cols]))
        return pc.and_(alive, pc.invert(bad))
    return alive


# --- establishments (StockEtablissement) ---------------------------------------------------------


class ColumnarReader:
    """Reads the file in Arrow record batches; `chunks()` has `chunked_records`' contract."""

    def __init__(
        self, path: str | os.PathLike[str], lookups: Lookups | None = None, drop_out_of_scope: bool = False
    ) -> None:
        self.path = Path(path)
        self.row_reader = SireneReader(self.path, lookups=lookups)  # header check and lookups, shared
        self.drop = drop_out_of_scope
        naf_known, commune_known = self.row_reader.lookups
        self.naf = _Checked(naf_known)
        self.commune = _Checked(commune_known)
        self.dates = _Checked(_date_ok)

    def chunks(self, chunk_size: int) -> Iterator[tuple[list[Record], list[Reject], int, dict[str, int]]]:
        for table, rejects, read, skipped in self.tables(chunk_size):
            yield _tuples(table), rejects, read, skipped

    def tables(self, chunk_size: int) -> Iterator[tuple[Any, list[Reject], int, dict[str, int]]]:
        """`chunks()` with each chunk's records as an Arrow table (RECORD_FIELDS; None when it has none)."""
        idx = self.row_reader.columns()
        stats = self.row_reader.stats
        pending = _Pending((SKIP_CLOSED, SKIP_NOT_TPE))
        for numbered in _ArrowStock(self.row_reader, len(idx)).batches():
            self._read_batch(numbered, idx, pending)
            for table, rejects, read, skipped in pending.chunks(chunk_size):
                stats.read += read
                yield table, rejects, read, skipped
        for table, rejects, read, skipped in pending.chunks(chunk_size, last=True):
            stats.read += read
            yield table, rejects, read, skipped

    def _read_batch(self, numbered: _Numbered, idx: dict[str, int], pending: _Pending) -> None:
        batch = numbered.batch
        cols = batch.columns
        n = batch.num_rows
        ncol = len(idx)
        rejects = pending.rejects
        for ln, fields in numbered.wrong_width:
            rejects.append(Reject(line=ln, field="row", reason=f"wrong column count ({len(fields)} instead of "
                                  f"{ncol})", raw=",".join(fields)[:500]))
        if n == 0:
            pending.add(numbered, None, None)
            return

        def col(name: str) -> Any:
            return cols[idx[name]]

        alive = numbered.alive
        siret = col("siret")

        def fail(mask_bad: Any, field: str, reason) -> None:
            # Rows still alive that fail this check are rejected with the row reader's reason.
            nonlocal alive
            alive = _fail(numbered, alive, mask_bad, rejects, lambda ln, row: Reject(
                line=ln, field=field, reason=reason(row), raw=",".join(row)[:500]))

        # SIRET: vectorised key, python-stdnum for the rest (La Poste's exception).
        fast = siret_fast_ok(siret)
        if not pc.all(fast).as_py():
            fast_l = fast.to_pylist()
            values = siret.to_pylist()
            fast = pa.array([ok or bool(stdnum_siret.is_valid(v)) for ok, v in zip(fast_l, values, strict=True)])
        fail(pc.invert(fast), "siret", lambda r: "invalid SIRET (checksum)")
        tranche = col("trancheEffectifsEtablissement")
        i_tr = idx["trancheEffectifsEtablissement"]
        fail(pc.invert(pc.is_in(tranche, value_set=pa.array(sorted(TRANCHES)))), "trancheEffectifsEtablissement",
             lambda r: f"unknown tranche {r[i_tr]!r}")
        etat = col("etatAdministratifEtablissement")
        i_etat = idx["etatAdministratifEtablissement"]
        active = pc.equal(etat, "A")
        is_closed = pc.equal(etat, "F")
        fail(pc.invert(pc.or_(active, is_closed)), "etatAdministratifEtablissement",
             lambda r: f"unknown state {r[i_etat]!r}")
        if self.drop:
            gone = pc.and_(alive, is_closed)
            if pc.any(gone).as_py():
                pending.dropped[SKIP_CLOSED].add(numbered.lines_of(gone))
            alive = pc.and_(alive, active)
            big = pc.and_(alive, pc.invert(pc.is_in(tranche, value_set=_TPE_SET)))
            if pc.any(big).as_py():
                pending.dropped[SKIP_NOT_TPE].add(numbered.lines_of(big))
                alive = pc.and_(alive, pc.invert(big))
        creation = col("dateCreationEtablissement")
        i_cre = idx["dateCreationEtablissement"]
        fail(pc.invert(self.dates.mask(creation)), "dateCreationEtablissement",
             lambda r: f"unreadable date {r[i_cre]!r}")
        debut = col("dateDebut")
        i_deb = idx["dateDebut"]
        fail(pc.invert(self.dates.mask(debut)), "dateDebut", lambda r: f"unreadable date {r[i_deb]!r}")

        # Active rows: NAF rév. 2 and commune checks (closed rows are not checked: CLOSED_ROWS_NOTE).
        naf = col("activitePrincipaleEtablissement")
        i_naf = idx["activitePrincipaleEtablissement"]
        has_naf = pc.and_(
            pc.equal(col("nomenclatureActivitePrincipaleEtablissement"), "NAFRev2"),
            pc.and_(pc.not_equal(naf, ""), pc.not_equal(naf, ND)),
        )
        naf_known = self.naf.mask(naf)
        fail(
            pc.and_(active, pc.and_(has_naf, pc.and_(pc.invert(naf_known), pc.not_equal(naf, NAF_UNKNOWN)))),
            "activitePrincipaleEtablissement",
            lambda r: f"unknown NAF code {r[i_naf]!r}",
        )
        commune = col("codeCommuneEtablissement")
        i_com = idx["codeCommuneEtablissement"]
        has_commune = pc.and_(pc.not_equal(commune, ""), pc.not_equal(commune, ND))
        fail(
            pc.and_(active, pc.and_(has_commune, pc.invert(self.commune.mask(commune)))),
            "codeCommuneEtablissement",
            lambda r: f"unknown commune {r[i_com]!r}",
        )
        if not pc.any(alive).as_py():
            pending.add(numbered, None, None)
            return

        # The records, built on whole columns of the rows kept only (a first load keeps about two rows in five).
        keep = None if pc.all(alive).as_py() else alive

        def kept(arr: Any) -> Any:
            return arr if keep is None else arr.filter(keep)

        def kcol(name: str) -> Any:
            return kept(cols[idx[name]])

        active, has_naf, naf_known, has_commune = kept(active), kept(has_naf), kept(naf_known), kept(has_commune)
        naf, tranche, creation, debut = kept(naf), kept(tranche), kept(creation), kept(debut)
        null = pa.scalar(None, pa.string())
        statut_public = pc.equal(kcol("statutDiffusionEtablissement"), "O")
        masked = pc.invert(statut_public)
        for i in numbered.masked_columns:
            masked = pc.or_(masked, pc.equal(kept(cols[i]), ND))
        full = pc.and_(active, pc.invert(masked))  # active, public, nothing masked: personal data kept
        name = pc.coalesce(_null_if_empty(kcol("enseigne1Etablissement")),
                           _null_if_empty(kcol("denominationUsuelleEtablissement")))
        kind = kcol("typeVoieEtablissement")
        keys = pa.array(list(STREET_TYPES), pa.string())
        spelled = pc.coalesce(pc.take(pa.array(list(STREET_TYPES.values()), pa.string()),
                                      pc.index_in(kind, value_set=keys)), kind)
        # " ".join of the non-empty parts. Why pairwise joins and not null_handling="skip": pyarrow 26 drops
        # the rows whose parts are all null with "skip" (the result comes out shorter).
        street = _null_if_empty(kcol("numeroVoieEtablissement"))
        for part in (_null_if_empty(spelled), _null_if_empty(kcol("libelleVoieEtablissement"))):
            street = pc.coalesce(pc.binary_join_element_wise(street, part, " "), street, part)

        def nd_empty(arr: Any) -> Any:
            return pc.if_else(pc.or_(pc.equal(arr, ""), pc.equal(arr, ND)), null, arr)

        n = len(active)
        emp = kcol("caractereEmployeurEtablissement")
        employer = pc.if_else(pc.equal(emp, "O"), True, pc.if_else(pc.equal(emp, "N"), False,
                                                                    pa.scalar(None, pa.bool_())))
        if "activitePrincipaleNAF25Etablissement" in idx:
            naf25 = pc.if_else(active, nd_empty(kcol("activitePrincipaleNAF25Etablissement")), null)
        else:
            naf25 = pa.nulls(n, pa.string())
        if "categorieEntreprise" in idx:
            cat = kcol("categorieEntreprise")
            category = pc.if_else(pc.is_in(cat, value_set=pa.array(sorted(CATEGORIES))), cat, null)
        else:
            category = pa.nulls(n, pa.string())
        if LEGAL_FORM in idx:  # as the row reader: four ASCII digits once stripped, else unknown (None)
            form = pc.utf8_trim_whitespace(col(LEGAL_FORM))
            form = pc.if_else(pc.match_substring_regex(form, "^[0-9]{4}$"), form, null)
        else:
            form = pa.nulls(n, pa.string())
        fields = [
            kcol("siret"),
            pc.if_else(full, name, null),
            pc.if_else(pc.and_(active, pc.and_(has_naf, naf_known)), naf, null),
            naf25,
            pc.if_else(pc.and_(full, has_commune), kcol("codeCommuneEtablissement"), null),
            _null_if_empty(tranche),
            employer,
            nd_empty(creation),
            pc.if_else(active, "active", "closed"),
            pc.if_else(active, masked, pc.invert(statut_public)),
            pc.if_else(full, _null_if_empty(street), null),
            pc.if_else(full, _null_if_empty(kcol("codePostalEtablissement")), null),
            pc.if_else(full, _null_if_empty(kcol("libelleCommuneEtablissement")), null),
            nd_empty(debut),
            pc.equal(kcol("etablissementSiege"), "true"),
            category,
            form,
        ]
        pending.add(numbered, keep, pa.RecordBatch.from_arrays(fields, names=RECORD_FIELDS))


# --- a first load's business rows, built on the columns -----------------------------------------

# The Arrow types of `triggers.sirene.BUSINESS_ROW` (text but for three flags).
_FLAGS = {"employer", "do_not_contact", "head_office"}
BUSINESS_SCHEMA = pa.schema([(c, pa.bool_() if c in _FLAGS else pa.string()) for c in BUSINESS_ROW]) if pa else None
_TPE_SET = pa.array(sorted(TPE_TRANCHES), pa.string()) if pa else None


class FirstLoadColumns:
    """`triggers.sirene.FirstLoadRows` on a chunk's records as an Arrow table (RECORD_FIELDS): the business rows
    come out as an Arrow batch of BUSINESS_ROW columns, made by Arrow's kernels, with the territory of each distinct
    commune and the family of each distinct NAF code looked up once per file (FirstLoadRows' own lookups).

    Why: in the parser process of a national first load, making 17 million Python tuples and marshalling them
    cost about as much as reading the file; the Arrow batch crosses to the writer as Arrow's IPC bytes, and
    becomes Python values only there, in one call (`row_major`, `business_values`). A chunk this path does not cover (a
    SIRET repeated within it, a closed or non-TPE row the parser did not drop) goes to FirstLoadRows itself."""

    def __init__(self, rows: FirstLoadRows) -> None:
        self.rows = rows
        self.families = _Lookup(lambda naf: (rows.family(naf),), [pa.string()])
        self.places = _Lookup(rows.territory, [pa.string()] * 4)

    def build(self, table: Any) -> tuple[Any, list[tuple[int, Record]], dict[str, int]]:
        """(the rows as an Arrow batch, [(row index, record) of the recent creations], rows left out by reason)."""
        rows = self.rows
        nothing_left_out = {SKIP_REPEATED: 0, SKIP_CLOSED: 0, SKIP_NOT_TPE: 0}
        if table is None:
            return pa.RecordBatch.from_pylist([], schema=BUSINESS_SCHEMA), [], nothing_left_out
        table = pa.RecordBatch.from_arrays([c.combine_chunks() for c in table.columns], names=table.column_names)
        col = table.column
        siret, state, tranche = col("siret"), col("state"), col("tranche")
        in_scope = pc.and_(pc.equal(state, "active"),
                           pc.or_(pc.is_null(tranche), pc.is_in(tranche, value_set=_TPE_SET)))
        if pc.count_distinct(siret).as_py() != len(siret) or not pc.all(in_scope).as_py():
            columns, recent, skipped = rows.build(_tuples(table))
            return _batch(columns), recent, skipped
        null = pa.scalar(None, pa.string())
        creation, street, naf, dnc = col("creation"), col("street"), col("naf"), col("dnc")
        stage = pc.if_else(pc.greater_equal(creation, rows.young_cutoff), "creation", "consolidation")
        recent_mask = pc.and_(pc.and_(pc.greater_equal(creation, rows.creation_cutoff),
                                      pc.less_equal(creation, rows.today)), pc.invert(dnc))
        at = pc.indices_nonzero(pc.fill_null(recent_mask, False))
        recent = list(zip(at.to_pylist(), _tuples(table.take(at)), strict=True)) if len(at) else []
        (family,) = self.families.take(naf)
        code, epci, departement, region = self.places.take(col("commune"))
        batch = pa.RecordBatch.from_arrays([
            siret, pc.utf8_slice_codeunits(siret, 0, 9), col("name"), naf, col("naf25"), family, code, epci,
            departement, region, tranche, col("employer"), creation, state, dnc, stage, street, col("postal"),
            col("city"), pc.if_else(pc.greater(pc.utf8_length(street), 0), "sirene", null), col("head"),
            col("category"), col("form"),
        ], schema=BUSINESS_SCHEMA)  # fmt: skip
        return batch, recent, nothing_left_out


def _batch(columns: list[Sequence]) -> Any:
    return pa.RecordBatch.from_arrays([pa.array(list(c), f.type) for c, f in zip(columns, BUSINESS_SCHEMA,
                                                                                  strict=True)],
                                      schema=BUSINESS_SCHEMA)


def first_load_batches(
    path: str | os.PathLike[str], lookups: Lookups | None, chunk_size: int, rows: FirstLoadRows
) -> Iterator[tuple[Any, list[tuple[int, Record]], list[Reject], int, dict[str, int]]]:
    """A first load's chunks (`triggers.sirene.built_chunks`' contract) with the rows as Arrow batches
    (BUSINESS_SCHEMA): closed and non-TPE rows dropped by the reader, the rows built by `FirstLoadColumns`."""
    reader = ColumnarReader(path, lookups, drop_out_of_scope=True)
    yield from built_chunks(reader.tables(chunk_size), FirstLoadColumns(rows).build)


def ipc_bytes(batch: Any) -> bytes:
    """An Arrow batch as Arrow's IPC stream bytes (for another process)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def row_major(batch: Any) -> Any:
    """A batch of business rows as a one-column batch of their values row after row (BUSINESS_ROW order), the
    three flags as "1" and "0": the parameters of the writer's multi-row INSERT as they are (`business_values`).

    Why text for the flags: one string array becomes one Python list in one call, where columns of mixed types
    would need a zip and a flattening per chunk in the writer (about a second of a 5 M-row first load, on the
    busier process). SQLite stores them as before: a BOOLEAN column has NUMERIC affinity, which keeps "1" and
    "0" as the integers 1 and 0."""
    columns = [pc.if_else(c, "1", "0") if c.type == pa.bool_() else c for c in batch.columns]
    values = pc.take(pa.concat_arrays(columns), _row_major_order(batch.num_rows, len(columns)))
    return pa.RecordBatch.from_arrays([values], names=["values"])


def _row_major_order(rows: int, width: int) -> Any:
    # take() indices from columns laid end to end to rows laid end to end: value k is column k % width of row
    # k // width. Built once per shape (a first load's chunks all have the same size but the last).
    order = _ORDERS.get((rows, width))
    if order is None:
        k = pa.array(range(rows * width), pa.int64())
        order = pc.add(pc.multiply(pc.subtract(k, pc.multiply(pc.divide(k, width), width)), rows), pc.divide(k, width))
        _ORDERS.clear()  # the previous shape is not needed again
        _ORDERS[(rows, width)] = order
    return order


_ORDERS: dict[tuple[int, int], Any] = {}


def business_values(batch: Any, empty_for_null: bool = False) -> list:
    """A first load's business rows (a batch from `row_major`, or its IPC bytes) as one list of their values, row
    after row; with `empty_for_null`, "" where a value is missing (for a writer that reads "" as NULL:
    `store.ingest.SireneStore.empty_is_null`)."""
    if isinstance(batch, bytes):
        batch = pa.ipc.open_stream(batch).read_next_batch()
    values = batch.column(0)
    return (pc.fill_null(values, "") if empty_for_null else values).to_pylist()


# --- legal units (StockUniteLegale) --------------------------------------------------------------


class UniteLegaleColumns:
    """Reads a StockUniteLegale file in Arrow record batches; `chunks()` has `triggers.sirene_ul.chunked_unites`'
    contract: the same records, rejects (line, field, reason, raw) and chunk boundaries.

    The SIREN key is checked on whole columns (vectorised Luhn, python-stdnum for the rows that fail it); the
    category, its year and the legal form by the row reader's own rules, once per distinct value of the file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.row_reader = UniteLegaleReader(path)  # header check, words and reject raw text, shared
        self.categories = _Mapped(category_of)
        self.years = _Mapped(year_of)
        self.legal_forms = _Mapped(legal_form_of)

    def chunks(self, chunk_size: int) -> Iterator[tuple[list[UlRecord], list[Reject], int]]:
        idx = self.row_reader.columns()
        stats = self.row_reader.stats
        pending = _Pending()
        stock = _ArrowStock(self.row_reader, len(idx))
        for numbered in stock.batches():
            self._read_batch(numbered, idx, pending)
            for table, rejects, read, _dropped in pending.chunks(chunk_size):
                stats.read += read
                stats.rejected += len(rejects)
                yield _tuples(table), rejects, read
        for table, rejects, read, _dropped in pending.chunks(chunk_size, last=True):
            stats.read += read
            stats.rejected += len(rejects)
            yield _tuples(table), rejects, read

    def _read_batch(self, numbered: _Numbered, idx: dict[str, int], pending: _Pending) -> None:
        rejected = self.row_reader.rejected
        rejects = pending.rejects
        ncol = len(idx)
        for ln, fields in numbered.wrong_width:
            rejects.append(rejected(ln, "row", WRONG_WIDTH.format(found=len(fields), expected=ncol), fields))
        cols = numbered.batch.columns
        if numbered.batch.num_rows == 0:
            pending.add(numbered, None, None)
            return
        alive = numbered.alive
        siren = cols[idx["siren"]]
        fast = siren_fast_ok(siren)
        if not pc.all(fast).as_py():
            fast = pa.array([ok or bool(stdnum_siren.is_valid(v))
                             for ok, v in zip(fast.to_pylist(), siren.to_pylist(), strict=True)])
        alive = _fail(numbered, alive, pc.invert(fast), rejects, lambda ln, row: rejected(ln, "siren", BAD_SIREN, row))
        i_cat = idx["categorieEntreprise"]
        category, good = self.categories.column(cols[i_cat])
        alive = _fail(numbered, alive, pc.invert(good), rejects,
                      lambda ln, row: rejected(ln, "categorieEntreprise", unknown_category(row[i_cat]), row))
        i_year = idx.get("anneeCategorieEntreprise")
        if i_year is None:
            year = pa.nulls(len(siren), pa.string())
        else:
            year, good = self.years.column(cols[i_year])
            alive = _fail(numbered, alive, pc.invert(good), rejects, lambda ln, row: rejected(
                ln, "anneeCategorieEntreprise", unreadable_year(year_of(row[i_year])[0]), row))
        i_form = idx.get(LEGAL_FORM)
        if i_form is None:
            form = pa.nulls(len(siren), pa.string())
        else:
            form, good = self.legal_forms.column(cols[i_form])
            alive = _fail(numbered, alive, pc.invert(good), rejects, lambda ln, row: rejected(
                ln, LEGAL_FORM, unreadable_legal_form(legal_form_of(row[i_form])[0]), row))
        fields = pa.RecordBatch.from_arrays([siren, category, year, form], names=_UL_FIELDS)
        if pc.all(alive).as_py():
            pending.add(numbered, None, fields)
        else:
            pending.add(numbered, alive, fields.filter(alive))


def columnar_unites(
    path: str | os.PathLike[str], chunk_size: int
) -> Iterator[tuple[list[UlRecord], list[Reject], int]]:
    """`triggers.sirene_ul.chunked_unites` on the columnar reader (requires pyarrow)."""
    yield from UniteLegaleColumns(path).chunks(chunk_size)


def columnar_chunks(
    path: str | os.PathLike[str], lookups: Lookups | None, chunk_size: int, drop_out_of_scope: bool = False
) -> Iterator[tuple[list[Record], list[Reject], int, dict[str, int]]]:
    """`triggers.sirene.chunked_records` on the columnar reader (requires pyarrow)."""
    yield from ColumnarReader(path, lookups, drop_out_of_scope).chunks(chunk_size)
