"""Bulk INSERTs (their ON CONFLICT and RETURNING included) run with the driver's own parameters.

SQLAlchemy Core runs a list of rows through its per-row, per-value parameter processing (type processors,
defaults, the insertmanyvalues batching): for the partner API's batches that cost more than the database's
own work. Here a statement is compiled once per (statement, dialect, columns), its VALUES clause repeated
for the rows of a chunk, and each value converted by one precomputed function per column (dates and times
to what SQLAlchemy writes on SQLite, JSON to text), so the driver gets plain tuples in one call.

Only plain column types are handled (text, numbers, booleans, dates, times, JSON); a statement needing
anything else (a Python-side default, an unknown type decorator, a bind outside VALUES) runs through
SQLAlchemy as before, with the same result.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection

# What SQLAlchemy's SQLite dialect writes for DATE and DATETIME values (ISO text, UTC, no offset).
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
_PLAIN = (sqltypes.String, sqltypes.Integer, sqltypes.Boolean, sqltypes.Float, sqltypes.Numeric)


def _sqlite_datetime(value: Any) -> Any:
    if not isinstance(value, dt.datetime):
        return value
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return value.strftime(_SQLITE_DATETIME)


def _aware_utc(value: Any) -> Any:
    # As sqlmodel's UTCDateTime: an aware datetime, in UTC; a naive one is refused.
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError("Datetime values must have timezone information.")
    return value.astimezone(dt.UTC)


def _sqlite_utc(value: Any) -> Any:
    value = _aware_utc(value)
    return None if value is None else value.strftime(_SQLITE_DATETIME)


def _sqlite_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        value = value.date()
    return value.isoformat() if isinstance(value, dt.date) else value


def _json(value: Any) -> str:
    return json.dumps(value)  # what SQLAlchemy's JSON type writes (its default serializer)


_UNSUPPORTED = object()


def _converter(col_type: Any, dialect: str) -> Callable[[Any], Any] | None | object:
    """The conversion of one column's values for the driver (None: as they are), or _UNSUPPORTED."""
    if isinstance(col_type, sqltypes.TypeDecorator):
        name = type(col_type).__module__ + "." + type(col_type).__qualname__
        # SQLModel's own decorators: AutoString is a plain string; UTCDateTime insists on aware values and
        # stores them in UTC.
        if name == "sqlmodel.sql.sqltypes.UTCDateTime":
            return _sqlite_utc if dialect == "sqlite" else _aware_utc
        if name != "sqlmodel.sql.sqltypes.AutoString":
            return _UNSUPPORTED
        col_type = col_type.impl_instance
    if isinstance(col_type, sqltypes.JSON):
        return _json
    if isinstance(col_type, sqltypes.DateTime):
        return _sqlite_datetime if dialect == "sqlite" else None
    if isinstance(col_type, sqltypes.Date):
        return _sqlite_date if dialect == "sqlite" else None
    if isinstance(col_type, _PLAIN):
        return None
    return _UNSUPPORTED


@dataclass
class _Plan:
    head: str  # the statement up to the VALUES rows
    row: str  # one row of placeholders, "(?, ?, ...)"
    tail: str  # ON CONFLICT ... RETURNING ...
    order: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # (column, conversion) in placeholder order
    sql: dict[int, str] = field(default_factory=dict)  # by number of rows

    def statement(self, rows: int) -> str:
        text = self.sql.get(rows)
        if text is None:
            text = self.sql[rows] = f"{self.head}{', '.join([self.row] * rows)}{self.tail}"
        return text


@lru_cache(maxsize=64)
def _plan(stmt: Any, dialect_cls: type, columns: tuple[str, ...]) -> _Plan | None:
    dialect = dialect_cls(paramstyle="qmark" if dialect_cls.name == "sqlite" else "format")
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
    imv = getattr(compiled, "_insertmanyvalues", None)
    names = compiled.positiontup
    if imv is None or names is None or set(names) != set(columns) or len(names) != len(columns):
        return None  # a default computed in Python, or a bind outside the VALUES clause
    row = f"({imv.single_values_expr})"
    if compiled.string.count(row) != 1:
        return None
    order = []
    table_columns = stmt.table.c
    for name in names:
        convert = _converter(table_columns[name].type, dialect_cls.name)
        if convert is _UNSUPPORTED:
            return None
        order.append((name, convert))
    head, tail = compiled.string.split(row)
    return _Plan(head, row, tail, tuple(order))


def insert_rows(conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]], chunk: int = 500) -> list[tuple]:
    """Run an INSERT statement (built once and cached by its caller) for `rows`, all with the same keys;
    returns what its RETURNING clause gives, as tuples (in no particular order). One driver call per chunk."""
    if not rows:
        return []
    columns = tuple(rows[0])
    plan = None
    if conn.dialect.name in ("sqlite", "postgresql") and conn.dialect.driver in ("pysqlite", "psycopg") \
            and all(len(r) == len(columns) for r in rows):
        plan = _plan(stmt, type(conn.dialect), columns)
    out: list[tuple] = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        if plan is None or any(tuple(r) != columns for r in part):
            result = conn.execute(stmt, list(part))
        else:
            params = [convert(r[name]) if convert else r[name] for r in part for name, convert in plan.order]
            result = conn.exec_driver_sql(plan.statement(len(part)), tuple(params))
        if result.returns_rows:
            out.extend(tuple(r) for r in result)
    return out
