"""Bulk INSERTs (their ON CONFLICT and RETURNING included) run with the driver's own parameters, and plain SQL
run by the driver's own cursor (`driver_sql`).

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
from itertools import chain
from operator import itemgetter
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

# What SQLAlchemy's SQLite dialect writes for DATE and DATETIME values (ISO text, UTC, no offset).
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"
_PLAIN = (sqltypes.String, sqltypes.Integer, sqltypes.Float, sqltypes.Numeric)


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


def _sqlite_bool(value: Any) -> Any:
    # What SQLAlchemy sends for a BOOLEAN on SQLite. The driver binds an int directly and a bool only after looking
    # it up among its adapters (about 0.25 µs a value).
    return value if value is None else int(value)


def _json(value: Any) -> str:
    if type(value) is dict and not value:
        return "{}"  # most events' payload, without a trip through the encoder
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
    if isinstance(col_type, sqltypes.Boolean):
        return _sqlite_bool if dialect == "sqlite" else None
    if isinstance(col_type, _PLAIN):
        return None
    return _UNSUPPORTED


@dataclass
class _Plan:
    head: str  # the statement up to the VALUES rows
    row: str  # one row of placeholders, "(?, ?, ...)"
    tail: str  # ON CONFLICT ... RETURNING ...
    order: tuple[tuple[str, Callable[[Any], Any] | None], ...]  # (column, conversion) in placeholder order
    # Columns the rows leave out whose default is a constant set in Python (a new column's default=...): the
    # same value SQLAlchemy would send, for every row.
    fill: dict[str, Any] = field(default_factory=dict)
    sql: dict[int, str] = field(default_factory=dict)  # by number of rows

    def statement(self, rows: int) -> str:
        text = self.sql.get(rows)
        if text is None:
            text = self.sql[rows] = f"{self.head}{', '.join([self.row] * rows)}{self.tail}"
        return text

    def params(self, rows: Sequence[dict[str, Any]]) -> tuple | None:
        """The flat parameters of `rows`, column by column (one conversion per column, not one test per value);
        None when a row lacks one of the columns, or when there is no row or no column given."""
        given = [name for name, _ in self.order if name not in self.fill]
        if not rows or not given:
            return None  # nothing to flatten: SQLAlchemy's path handles it
        try:
            columns = dict(zip(given, zip(*map(itemgetter(*given), rows), strict=True), strict=True)) \
                if len(given) > 1 else {given[0]: tuple(r[given[0]] for r in rows)}
        except KeyError:
            return None
        return self._flat(columns, len(rows))

    def value_params(self, names: Sequence[str], rows: Sequence[tuple]) -> tuple | None:
        """`params` for rows given as tuples of the values of `names`, in that order; None when a column is not
        among `names`, or when there is no row or no column given."""
        if not rows or not names or any(name not in names for name, _ in self.order if name not in self.fill):
            return None
        return self._flat(dict(zip(names, zip(*rows, strict=True), strict=True)), len(rows))

    def _flat(self, columns: dict[str, Sequence[Any]], count: int) -> tuple:
        # The values of each column converted, then laid out row after row.
        width = []
        for name, convert in self.order:
            if name in self.fill:
                value = self.fill[name]
                width.append([convert(value) if convert else value] * count)
            else:
                width.append(_converted(columns[name], convert) if convert else columns[name])
        return tuple(chain.from_iterable(zip(*width, strict=True)))


def _converted(values: Sequence[Any], convert: Callable[[Any], Any]) -> list[Any]:
    # The batch's moment is the same object in every row: converted once.
    out, last, done = [], _UNSUPPORTED, None
    for value in values:
        if value is not last:
            last, done = value, convert(value)
        out.append(done)
    return out


@lru_cache(maxsize=64)
def _plan(stmt: Any, dialect_cls: type, columns: tuple[str, ...]) -> _Plan | None:
    dialect = dialect_cls(paramstyle="qmark" if dialect_cls.name == "sqlite" else "format")
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns), for_executemany=True)
    imv = getattr(compiled, "_insertmanyvalues", None)
    names = compiled.positiontup
    table_columns = stmt.table.c
    if imv is None or names is None or len(set(names)) != len(names) or not set(columns) <= set(names):
        return None  # a bind outside the VALUES clause
    fill = {}
    for name in set(names) - set(columns):
        default = table_columns[name].default if name in table_columns else None
        if default is None or not default.is_scalar:
            return None  # a default computed in Python per row, or a bind outside the VALUES clause
        fill[name] = default.arg
    row = f"({imv.single_values_expr})"
    if compiled.string.count(row) != 1:
        return None
    order = []
    for name in names:
        convert = _converter(table_columns[name].type, dialect_cls.name)
        if convert is _UNSUPPORTED:
            return None
        order.append((name, convert))
    head, tail = compiled.string.split(row)
    return _Plan(head, row, tail, tuple(order), fill=fill)


def insert_rows(conn: Connection, stmt: Any, rows: Sequence[dict[str, Any]], chunk: int = 500) -> list[tuple]:
    """Run an INSERT statement (built once and cached by its caller) for `rows`, all with the same keys;
    returns what its RETURNING clause gives, as tuples (in no particular order). One driver call per chunk."""
    if not rows:
        return []
    columns = tuple(rows[0])
    plan = None
    if _driver_path(conn) and all(len(r) == len(columns) for r in rows):
        plan = _plan(stmt, type(conn.dialect), columns)
    out: list[tuple] = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        params = plan.params(part) if plan is not None else None
        out.extend(_run(conn, stmt, plan, params, part))
    return out


def insert_values(conn: Connection, stmt: Any, names: tuple[str, ...], rows: Sequence[tuple],
                  chunk: int = 500) -> list[tuple]:
    """`insert_rows` for rows given as tuples of the values of `names`, in that order (no dict per row)."""
    if not rows:
        return []
    plan = _plan(stmt, type(conn.dialect), names) if _driver_path(conn) else None
    out: list[tuple] = []
    for start in range(0, len(rows), chunk):
        part = rows[start:start + chunk]
        params = plan.value_params(names, part) if plan is not None else None
        out.extend(_run(conn, stmt, plan, params, part if params is not None
                        else [dict(zip(names, r, strict=True)) for r in part]))
    return out


def _driver_path(conn: Connection) -> bool:
    return conn.dialect.name in ("sqlite", "postgresql") and conn.dialect.driver in ("pysqlite", "psycopg")


def _run(conn: Connection, stmt: Any, plan: _Plan | None, params: tuple | None, rows: Sequence[Any]) -> list[tuple]:
    # One chunk: by the driver with the flat parameters, or by SQLAlchemy with the rows as dicts.
    if params is not None and plan is not None:
        return driver_sql(conn, plan.statement(len(rows)), params).rows
    result = conn.execute(stmt, list(rows))
    # One fetch of all rows: a third of the cost of row by row.
    return list(map(tuple, result.all())) if result.returns_rows else []


@dataclass(slots=True)
class DriverResult:
    """What a statement run by `driver_sql` gave: its rows as tuples (none for a statement that returns none) and
    the driver's row count (the rows changed by an INSERT, UPDATE or DELETE, summed over an executemany)."""

    rows: list[tuple]
    rowcount: int


def driver_sql(conn: Connection, sql: str, params: Sequence[Any] | list[Sequence[Any]] = ()) -> DriverResult:
    """Run plain SQL in `conn`'s transaction with the driver's placeholders and values; a list of parameter
    sequences runs it once for each (executemany). A driver error comes out as SQLAlchemy's, as from
    `exec_driver_sql`.

    Why not `exec_driver_sql` on SQLite: SQLAlchemy's result around each statement (its metadata read from the
    cursor, a Row per row) cost more than SQLite's own work in a single-event partner request: about a sixth of the
    server's CPU per request, over its seven statements. PostgreSQL (where SQLAlchemy also notices a lost
    connection), and any engine with statement listeners (the tests' query-plan checks), keep `exec_driver_sql`."""
    if params == []:
        return DriverResult([], 0)  # no parameter sequence: nothing to run (exec_driver_sql would run it once)
    dispatch = conn.dispatch
    if conn.dialect.driver != "pysqlite" or dispatch.before_cursor_execute or dispatch.after_cursor_execute:
        result = conn.exec_driver_sql(sql, params or None)
        return DriverResult([tuple(r) for r in result.all()] if result.returns_rows else [], result.rowcount)
    cursor = conn.connection.driver_connection.cursor()
    try:
        if isinstance(params, list):
            cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params)
        return DriverResult(cursor.fetchall() if cursor.description else [], cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(sql, params, exc, conn.dialect.loaded_dbapi.Error, dialect=conn.dialect,
                                 ismulti=isinstance(params, list)) from exc
    finally:
        cursor.close()
