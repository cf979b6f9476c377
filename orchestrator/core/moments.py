"""Moments as the store gives them back: SQLite returns naive datetimes that are UTC, PostgreSQL aware ones."""

from __future__ import annotations

import datetime as dt


def as_utc(moment: dt.datetime) -> dt.datetime:
    """The same moment, aware and in UTC (a naive one is read as UTC)."""
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
