"""Dialect-aware statements shared by the writers (SQLite and PostgreSQL both speak ON CONFLICT)."""

from __future__ import annotations

from sqlalchemy import Table
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
