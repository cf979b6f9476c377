"""The plan a database gives a statement, for tests that check a look-up goes through an index."""

from __future__ import annotations


def query_plan(conn, statement: str, parameters) -> list[str]:
    """The plan's lines for `statement` as the driver would run it: SQLite's EXPLAIN QUERY PLAN details, PostgreSQL's
    EXPLAIN with sequential scans discouraged (on a test's table of a few rows the planner would rightly prefer one,
    which says nothing of a table of millions)."""
    cursor = conn.connection.driver_connection.cursor()
    if conn.dialect.name == "sqlite":
        cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        return [row[3] for row in cursor.fetchall()]
    cursor.execute("SET enable_seqscan = off")
    try:
        cursor.execute("EXPLAIN " + statement, parameters)
        return [row[0] for row in cursor.fetchall()]
    finally:
        cursor.execute("RESET enable_seqscan")
