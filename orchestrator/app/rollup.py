"""The nightly metrics job's entry point, as the `metrics-rollup` flow calls it (`orchestrator.app.rollup:rollup`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.engine import Engine

from store.report import refresh_rollup


def rollup(engine: Engine, day: dt.date | None = None, *, now: dt.datetime) -> dict[str, Any]:
    """Recompute every campaign's rollup, its funnel and its adoption figures (late conversions attributed first),
    as of `now`: the reports read them until the next run.

    The rollup always covers the whole history up to now: `day` only labels the run (the flow passes
    yesterday), because a conversion may arrive weeks after its message.
    """
    rows = refresh_rollup(engine, now=now)
    return {"day": day.isoformat() if day else None, "rollup_rows": rows}
