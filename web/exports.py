"""Exports that open in a French spreadsheet: CSV with `;`, UTF-8 with a byte-order mark, French decimals
("3,1") and percentages as the screen shows them ("12,5 %"), French headers, one file per table; and the
whole report of a campaign as one .xlsx workbook (one sheet per table, real numbers with French-looking
formats), from the same `Table`s `declic report` prints.

Numbers are written so that a French Excel or LibreOffice reads them as numbers: no thousands separator,
a decimal comma, an ASCII minus; a percentage keeps its "%" (Excel reads "12,5 %" as 0,125). Effects in
percentage points are written as points ("3,1" under "Effet (points)"). Text that a spreadsheet would take
for a formula (=, +, -, @ ...) is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from orchestrator.core.labels import datetime_fr
from orchestrator.core.stats import CampaignReport, Table

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The breakdowns whose codes mean something to a person (INSEE codes of communes and départements); the other
# codes (trade families, triggers, channels, EPCI SIREN numbers) are shown by their French name only.
CODED_TABLES = {"by_commune_code": "Code INSEE", "by_departement_code": "Code INSEE"}


def shown_columns(table: Table) -> list[tuple[str, str]]:
    """The columns a person reads: a breakdown's raw code only where it is a known public code."""
    out = []
    for key, header in table.columns:
        if key == "value" and table.key.startswith("by_"):
            if table.key not in CODED_TABLES:
                continue
            header = CODED_TABLES[table.key]
        out.append((key, header))
    return out


def fr_datetime(value: dt.datetime | str | None, zone: ZoneInfo) -> str:
    """A moment as a person of the deployment's zone reads it: "4 déc. 2026, 22 h 59" (a naive value is UTC; text
    that is not a date is shown as it is)."""
    try:
        return datetime_fr(value, zone)
    except ValueError:
        return str(value)


def _decimal(value: float, digits: int = 1) -> str:
    text = f"{value:.{digits}f}".replace(".", ",")
    return "0" + text[2:] if text.startswith("-0") and not any(c in "123456789" for c in text) else text


def text_cell(value: Any) -> str:
    """A text value made safe for a spreadsheet (never read as a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "oui" if value else "non"
    text = str(value)
    return "'" + text if len(text) > 1 and text[0] in FORMULA_STARTS else text


def csv_cell(value: Any, zone: ZoneInfo, kind: str = "text") -> str:
    """One cell as a French spreadsheet reads it, by column kind (see `Table.kinds`); moments in `zone`."""
    if value is None:
        return ""
    if kind == "int":
        return str(int(round(value)))
    if kind == "pct":
        return _decimal(value * 100) + " %"
    if kind == "pts":
        return _decimal(value * 100)
    if kind == "days":
        return _decimal(value)
    if isinstance(value, dt.datetime | dt.date):
        return fr_datetime(value, zone) if isinstance(value, dt.datetime) else value.strftime("%d/%m/%Y")
    return text_cell(value)


def french_csv(columns: list[tuple[str, str]], rows: list[dict[str, Any]], zone: ZoneInfo,
               kinds: dict[str, str] | None = None) -> str:
    """Rows as a French CSV (`;`, CRLF as spreadsheets write it; the byte-order mark is added by the response),
    moments in `zone`."""
    kinds = kinds or {}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([header for _, header in columns])
    for row in rows:
        writer.writerow([csv_cell(row.get(key), zone, kinds.get(key, "text")) for key, _ in columns])
    return out.getvalue()


def table_csv_fr(table: Table, zone: ZoneInfo) -> str:
    """One table of a report as a French CSV."""
    return french_csv(shown_columns(table), table.rows, zone, table.kinds)


# --- the whole report as one workbook ---

XLSX_FORMATS = {"int": "0", "pct": "0.0%", "pts": "+0.0;-0.0;0.0", "days": "0.0"}
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def xlsx_value(value: Any, kind: str) -> Any:
    """A cell's value in the workbook: numbers stay numbers (points as points), text is made safe."""
    if value is None:
        return None
    if kind == "int":
        return int(round(value))
    if kind == "pts":
        return value * 100
    if kind in ("pct", "days"):
        return float(value)
    return text_cell(value)


def _sheet_title(table: Table, used: set[str]) -> str:
    # Excel: at most 31 characters, none of []:*?/\ , unique in the workbook.
    base = "".join(" " if c in "[]:*?/\\" else c for c in table.title)[:31].strip()
    title, n = base, 2
    while title.lower() in used:
        suffix = f" ({n})"
        title, n = base[: 31 - len(suffix)] + suffix, n + 1
    used.add(title.lower())
    return title


def report_workbook(report: CampaignReport, *, summary: list[tuple[str, Any]] | None = None) -> bytes:
    """The whole report: a first sheet with the campaign and its key figures, then one sheet per table."""
    wb = Workbook()
    first = wb.active
    first.title = "Campagne"
    first.append(["Campagne", report.title])
    first["A1"].font = Font(bold=True)
    for label, value in summary or []:
        first.append([label, text_cell(value) if isinstance(value, str) else value])
    first.column_dimensions["A"].width = 40
    first.column_dimensions["B"].width = 60
    used = {"campagne"}
    for table in report.tables:
        ws = wb.create_sheet(_sheet_title(table, used))
        columns = shown_columns(table)
        ws.append([table.title])
        ws["A1"].font = Font(bold=True)
        ws.append([header for _, header in columns])
        for cell in ws[2]:
            cell.font = Font(bold=True)
        for row in table.rows:
            ws.append([xlsx_value(row.get(key), table.kinds.get(key, "text")) for key, _ in columns])
        for i, (key, header) in enumerate(columns, start=1):
            letter = get_column_letter(i)
            ws.column_dimensions[letter].width = max(12, min(45, len(header) + 2))
            fmt = XLSX_FORMATS.get(table.kinds.get(key, "text"))
            if fmt:
                for (cell,) in ws.iter_rows(min_row=3, min_col=i, max_col=i):
                    cell.number_format = fmt
        ws.freeze_panes = "A3"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
