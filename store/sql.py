"""Dialect-aware statements shared by the writers (SQLite and PostgreSQL both speak ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import String, Table, TypeDecorator, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_for(conn: Connection, table: Table):
    """An INSERT that supports `.on_conflict_do_nothing()` / `.on_conflict_do_update()` on this dialect."""
    return insert_for_dialect(conn.dialect.name, table)


def insert_for_dialect(dialect: str, table: Table):
    """`insert_for` by dialect name (for statements built once and cached)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database dialect: {dialect}")


def chunks(items: list, size: int):
    """Successive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def among(conn: Connection, column, values: Iterable):
    """`column IN values`; on PostgreSQL `column = ANY(array)`, one parameter: psycopg parses a statement's
    placeholders anew each time it has more than 50 parameters (2 to 30 ms for the lists of a planning batch)."""
    if conn.dialect.name != "postgresql":
        return column.in_(values)
    col_type = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    # Strings compared as VARCHAR: a cast to VARCHAR(n) would cut a longer value, which could then match.
    item = String() if isinstance(col_type, String) else col_type
    return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(item)))
