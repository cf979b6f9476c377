"""Columnar reader of the Sirene `StockEtablissement` file: pyarrow's CSV reader in record batches.

Why: the national stock holds 43.9 million rows; the row-by-row reader (`triggers.sirene.SireneReader`)
spends about 6 µs a row in Python, half of it in the csv module. Here the file is tokenised and converted
by Arrow's C++ reader in batches of about 8 MB (memory stays bounded by a few batches), and every check is
done on whole columns: the SIRET key with a vectorised Luhn (rows that fail it go to python-stdnum, so the
La Poste exception gives the same verdict), the NAF, commune and date checks on the batch's distinct
values only (dictionary style, each value checked once per file).

Same contract as `triggers.sirene.chunked_records`: the same records, the same rejects (line, field,
reason, raw text) and the same chunk boundaries, so an ingest gives the same businesses, events and
report either way (tests/integration/test_ingest_columnar.py holds both paths to that). Line numbers are
physical lines, multi-line quoted values included, as the csv module counts them. One difference: a row
whose every field is empty (a line of commas only) reads as a blank line, as Arrow gives both the same.

pyarrow is an optional dependency (`pip install declic-tpe[national]`); without it the ingest keeps the
row-by-row reader.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import os
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from stdnum.fr import siret as stdnum_siret

from triggers.model import Reject
from triggers.sirene import (
    CATEGORIES,
    NAF_UNKNOWN,
    ND,
    SKIP_CLOSED,
    SKIP_NOT_TPE,
    STREET_TYPES,
    TPE_TRANCHES,
    TRANCHES,
    Lookups,
    Record,
    SireneFormatError,
    SireneReader,
    zip_member,
)

try:  # optional: the [national] extra
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pv
except ImportError:  # pragma: no cover - exercised where pyarrow is not installed
    pa = pc = pv = None  # type: ignore[assignment]

BLOCK_SIZE = 8 << 20  # bytes of CSV per record batch (about 40,000 rows of the stock)


def available() -> bool:
    """True when pyarrow is installed (the `national` extra)."""
    return pa is not None


# --- vectorised SIRET key ------------------------------------------------------------------------

_TAKE: list[Any] = []


def _positions(n: int) -> list[Any]:
    # take() indices of digit p of each 14-byte value, built once (for the largest batch seen) and sliced.
    if not _TAKE or len(_TAKE[0]) < n:
        size = max(n, 65_536)
        _TAKE[:] = [pa.array(range(p, 14 * size, 14), pa.int32()) for p in range(14)]
    return [ix.slice(0, n) for ix in _TAKE]


def _doubled(d: Any) -> Any:
    # Luhn's doubled digit: 2d, minus 9 when that is 10 or more.
    return pc.subtract(pc.multiply(d, 2), pc.multiply(pc.cast(pc.greater_equal(d, 5), pa.int16()), 9))


def siret_fast_ok(sirets: Any) -> Any:
    """Boolean array: 14 ASCII digits passing the Luhn test of the SIREN and of the SIRET.

    A False is not a verdict: the caller asks python-stdnum about those rows (La Poste's units, whose
    SIRET follows another rule), exactly as `triggers.sirene.siret_is_valid` does row by row.
    """
    n = len(sirets)
    if n == 0:
        return pa.array([], pa.bool_())
    shape = pc.and_(pc.equal(pc.binary_length(sirets), 14), pc.ascii_is_decimal(sirets))
    safe = pc.if_else(shape, sirets, "00000000000000")
    fixed = safe.cast(pa.binary(14))
    data = pa.Array.from_buffers(pa.uint8(), 14 * n, [None, fixed.buffers()[1]], offset=fixed.offset * 14)
    digits = pc.cast(pc.subtract(data, 48), pa.int16())
    d = [pc.take(digits, ix) for ix in _positions(n)]
    # SIREN (digits 0-8): from the right, digit 8 as is, digit 7 doubled, ...
    siren_sum = d[0]
    for p in range(1, 9):
        siren_sum = pc.add(siren_sum, _doubled(d[p]) if p % 2 else d[p])
    # SIRET (digits 0-13): digit 13 as is, digit 12 doubled, ...
    siret_sum = d[13]
    for p in range(13):
        siret_sum = pc.add(siret_sum, d[p] if p % 2 else _doubled(d[p]))
    ok = pc.and_(_tens(siren_sum), _tens(siret_sum))
    return pc.and_(shape, ok)


def _tens(total: Any) -> Any:
    # total % 10 == 0 (integer division: pc.divide truncates on integers)
    return pc.equal(pc.subtract(total, pc.multiply(pc.divide(total, 10), 10)), 0)


# --- the reader ----------------------------------------------------------------------------------


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


class _Checked:
    """Per-file cache of distinct values already checked (NAF codes, communes, dates)."""

    def __init__(self, check) -> None:
        self.check = check
        self.known: dict[str, bool] = {}

    def mask(self, arr: Any) -> Any:
        values = pc.unique(arr).to_pylist()
        known = self.known
        for v in values:
            if v not in known:
                known[v] = bool(self.check(v))
        good = [v for v in values if known[v]]
        return pc.is_in(arr, value_set=pa.array(good, pa.string()))


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
        self.invalid: list[tuple[int, str, int]] = []  # (record number, text, columns) from Arrow

    # -- batches --

    def _on_invalid(self, row: Any) -> str:
        self.invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    def _batches(self, ncol: int) -> Iterator[Any]:
        stack: list = []
        names = [f"c{i}" for i in range(ncol)]
        try:
            source = _source(self.path, stack)
            reader = pv.open_csv(
                source,
                read_options=pv.ReadOptions(
                    use_threads=False, block_size=BLOCK_SIZE, skip_rows=1, column_names=names
                ),
                parse_options=pv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=self._on_invalid),
                convert_options=pv.ConvertOptions(
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
            yield from reader
        except pa.ArrowInvalid as exc:
            if "UTF8" in str(exc) or "utf8" in str(exc):
                raise SireneFormatError(f"{self.path.name}: not UTF-8 text ({exc})") from exc
            raise SireneFormatError(f"{self.path.name}: unreadable CSV ({exc})") from exc
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise SireneFormatError(f"{self.path.name}: truncated or damaged compressed file ({exc})") from exc
        finally:
            for item in reversed(stack):
                item.close()

    # -- chunks --

    def chunks(self, chunk_size: int) -> Iterator[tuple[list[Record], list[Reject], int, dict[str, int]]]:
        idx = self.row_reader.columns()
        ncol = len(idx)
        stats = self.row_reader.stats
        # Pending items, each in file order: records and their lines, rejects, row lines, dropped lines.
        recs: list[Record] = []
        rec_lines: list[int] = []
        rejects: list[Reject] = []
        rows: list[Sequence[int]] = []  # segments of lines of rows read (ranges or lists)
        closed: list[int] = []
        not_tpe: list[int] = []
        record_no = 1  # Arrow's record counter: the header is record 1
        line = 1  # physical lines consumed so far

        def cut(upto: float) -> tuple[int, dict[str, int], list[Reject]]:
            read = 0
            while rows:
                seg = rows[0]
                k = bisect.bisect_right(seg, upto)
                read += k
                if k < len(seg):
                    rows[0] = seg[k:]
                    break
                rows.pop(0)
            nc = bisect.bisect_right(closed, upto)
            nt = bisect.bisect_right(not_tpe, upto)
            nr = bisect.bisect_right([r.line for r in rejects], upto)
            out = rejects[:nr]
            del closed[:nc], not_tpe[:nt], rejects[:nr]
            return read, {SKIP_CLOSED: nc, SKIP_NOT_TPE: nt}, out

        def batches() -> Iterator[Any]:
            yield from self._batches(ncol)
            if self.invalid:  # rows of the wrong width at the very end leave no batch of their own
                empty = pa.array([], pa.string())
                yield pa.RecordBatch.from_arrays([empty] * ncol, [f"c{i}" for i in range(ncol)])

        for batch in batches():
            lines, invalid_rows = self._lines(batch, record_no, line)
            n = batch.num_rows
            record_no += n + len(invalid_rows)
            line = max([line, *lines[-1:], *(r[0] for r in invalid_rows)])
            self._read_batch(batch, idx, lines, invalid_rows, ncol, recs, rec_lines, rejects, rows, closed, not_tpe)
            rejects.sort(key=lambda r: r.line)
            while len(recs) >= chunk_size:
                upto = rec_lines[chunk_size - 1]
                read, skipped, out = cut(upto)
                stats.read += read
                yield recs[:chunk_size], out, read, skipped
                del recs[:chunk_size], rec_lines[:chunk_size]
        read, skipped, out = cut(float("inf"))
        stats.read += read
        yield recs, out, read, skipped

    def _lines(self, batch: Any, record_no: int, line: int) -> tuple[Sequence[int], list[tuple[int, str, int]]]:
        """Physical end lines of the batch's rows, and its invalid rows as (end line, text, columns)."""
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
        # A value holding a line break is rare; the check is a byte search over each column's data.
        newlines = [c for c in batch.columns if (d := c.buffers()[2]) is not None and d.to_pybytes().find(b"\n") >= 0]
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

    def _read_batch(self, batch, idx, lines, invalid_rows, ncol, recs, rec_lines, rejects, rows, closed, not_tpe):
        cols = batch.columns
        n = batch.num_rows

        def col(name: str) -> Any:
            return cols[idx[name]]

        invalid_lines: list[int] = []
        for ln, text, _columns in invalid_rows:
            fields = next(csv.reader(io.StringIO(text)), [])
            if not fields:
                continue  # a blank line is not a row
            invalid_lines.append(ln)
            rejects.append(Reject(line=ln, field="row", reason=f"wrong column count ({len(fields)} instead of "
                                  f"{ncol})", raw=",".join(fields)[:500]))
        if n == 0:
            return

        siret = col("siret")
        alive = pc.is_valid(siret)  # all True
        # Blank lines come out of Arrow as rows of empty fields.
        empty_siret = pc.equal(siret, "")
        if pc.any(empty_siret).as_py():
            blank = [
                i for i in pc.indices_nonzero(empty_siret).to_pylist() if all(c[i].as_py() == "" for c in cols)
            ]
            if blank:
                mask = [True] * n
                for i in blank:
                    mask[i] = False
                alive = pa.array(mask)
        if isinstance(lines, range) and pc.all(alive).as_py():
            segment: Sequence[int] = lines
        else:
            segment = [ln for ln, k in zip(lines, alive.to_pylist(), strict=True) if k]
        if invalid_lines:
            segment = sorted([*segment, *invalid_lines])
        rows.append(segment)

        def fail(mask_bad: Any, field: str, reason) -> None:
            # Rows still alive that fail this check are rejected with the row reader's reason.
            nonlocal alive
            bad = pc.and_(alive, mask_bad)
            if pc.any(bad).as_py():
                for i in pc.indices_nonzero(bad).to_pylist():
                    row = [c[i].as_py() for c in cols]
                    rejects.append(Reject(line=lines[i], field=field, reason=reason(row), raw=",".join(row)[:500]))
                alive = pc.and_(alive, pc.invert(mask_bad))

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
                closed.extend(lines[i] for i in pc.indices_nonzero(gone).to_pylist())
            alive = pc.and_(alive, active)
            big = pc.and_(alive, pc.invert(pc.is_in(tranche, value_set=pa.array(sorted(TPE_TRANCHES)))))
            if pc.any(big).as_py():
                not_tpe.extend(lines[i] for i in pc.indices_nonzero(big).to_pylist())
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
            return

        # The records, built on whole columns then taken row-wise for the rows kept.
        null = pa.scalar(None, pa.string())
        statut_public = pc.equal(col("statutDiffusionEtablissement"), "O")
        masked = pc.invert(statut_public)
        for c in cols:
            masked = pc.or_(masked, pc.equal(c, ND))
        full = pc.and_(active, pc.invert(masked))  # active, public, nothing masked: personal data kept
        name = pc.coalesce(_null_if_empty(col("enseigne1Etablissement")),
                           _null_if_empty(col("denominationUsuelleEtablissement")))
        kind = col("typeVoieEtablissement")
        keys = pa.array(list(STREET_TYPES), pa.string())
        spelled = pc.coalesce(pc.take(pa.array(list(STREET_TYPES.values()), pa.string()),
                                      pc.index_in(kind, value_set=keys)), kind)
        # " ".join of the non-empty parts. Why pairwise joins and not null_handling="skip": pyarrow 26 drops
        # the rows whose parts are all null with "skip" (the result comes out shorter).
        street = _null_if_empty(col("numeroVoieEtablissement"))
        for part in (_null_if_empty(spelled), _null_if_empty(col("libelleVoieEtablissement"))):
            street = pc.coalesce(pc.binary_join_element_wise(street, part, " "), street, part)

        def nd_empty(arr: Any) -> Any:
            return pc.if_else(pc.or_(pc.equal(arr, ""), pc.equal(arr, ND)), null, arr)

        emp = col("caractereEmployeurEtablissement")
        employer = pc.if_else(pc.equal(emp, "O"), True, pc.if_else(pc.equal(emp, "N"), False,
                                                                    pa.scalar(None, pa.bool_())))
        if "activitePrincipaleNAF25Etablissement" in idx:
            naf25 = pc.if_else(active, nd_empty(col("activitePrincipaleNAF25Etablissement")), null)
        else:
            naf25 = pa.nulls(n, pa.string())
        if "categorieEntreprise" in idx:
            cat = col("categorieEntreprise")
            category = pc.if_else(pc.is_in(cat, value_set=pa.array(sorted(CATEGORIES))), cat, null)
        else:
            category = pa.nulls(n, pa.string())
        fields = [
            siret,
            pc.if_else(full, name, null),
            pc.if_else(pc.and_(active, pc.and_(has_naf, naf_known)), naf, null),
            naf25,
            pc.if_else(pc.and_(full, has_commune), commune, null),
            _null_if_empty(tranche),
            employer,
            nd_empty(creation),
            pc.if_else(active, "active", "closed"),
            pc.if_else(active, masked, pc.invert(statut_public)),
            pc.if_else(full, _null_if_empty(street), null),
            pc.if_else(full, _null_if_empty(col("codePostalEtablissement")), null),
            pc.if_else(full, _null_if_empty(col("libelleCommuneEtablissement")), null),
            nd_empty(debut),
            pc.equal(col("etablissementSiege"), "true"),
            category,
        ]
        if pc.all(alive).as_py():
            values = [f.to_pylist() for f in fields]
            recs.extend(zip(*values, strict=True))
            rec_lines.extend(lines)
        else:
            values = [f.filter(alive).to_pylist() for f in fields]
            recs.extend(zip(*values, strict=True))
            keep = pc.indices_nonzero(alive).to_pylist()
            rec_lines.extend(lines[i] for i in keep)


def columnar_chunks(
    path: str | os.PathLike[str], lookups: Lookups | None, chunk_size: int, drop_out_of_scope: bool = False
) -> Iterator[tuple[list[Record], list[Reject], int, dict[str, int]]]:
    """`triggers.sirene.chunked_records` on the columnar reader (requires pyarrow)."""
    yield from ColumnarReader(path, lookups, drop_out_of_scope).chunks(chunk_size)
