"""BODACC's public API as a feed: the records endpoint of the `annonces-commerciales` dataset (Opendatasoft
Explore v2.1), filtered on `dateparution` and on départements, paged with limit/offset.

The endpoint refuses `offset + limit` beyond 10,000, so a query that matches more is cut into smaller date
ranges (halves, down to one day), then one département at a time. Records are written as JSON lines, the
shape `triggers.bodacc` already reads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO

from triggers.feeds.http import FeedHttp, FetchError

OFFSET_CAP = 10_000  # offset + limit must stay within it (Opendatasoft Explore API v2.1)
PAGE_SIZE = 100  # the records endpoint's largest page


@dataclass
class BodaccPull:
    """What one pull brought: records written, requests made, the latest publication date seen."""

    records: int = 0
    pages: int = 0
    last_date: dt.date | None = None
    truncated: list[str] = field(default_factory=list)  # slices that still exceeded the offset limit


def where_clause(since: dt.date, until: dt.date, departements: Sequence[str]) -> str:
    """The ODSQL filter: publication dates within [since, until] and, when given, these départements."""
    clause = f"dateparution >= date'{since.isoformat()}' AND dateparution <= date'{until.isoformat()}'"
    if departements:
        clause += " AND (" + " OR ".join(f'numerodepartement = "{d}"' for d in departements) + ")"
    return clause


def pull_bodacc(
    http: FeedHttp,
    url: str,
    out: IO[str],
    *,
    since: dt.date,
    until: dt.date,
    departements: Sequence[str],
    all_departements: Sequence[str] = (),
    page_size: int | None = None,
    offset_cap: int | None = None,
) -> BodaccPull:
    """Write every record published in [since, until] (in these départements) to `out`, one JSON a line."""
    page_size, offset_cap = page_size or PAGE_SIZE, offset_cap or OFFSET_CAP
    pull = BodaccPull()

    def page(lo: dt.date, hi: dt.date, deps: Sequence[str], offset: int, limit: int) -> dict:
        params = {
            "where": where_clause(lo, hi, deps),
            "order_by": "dateparution, id",
            "limit": limit,
            "offset": offset,
        }
        _, body = http.get_json(url, params=params)
        pull.pages += 1
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise FetchError("réponse BODACC inattendue (ni 'results' ni 'total_count')")
        return body

    def write(results: list) -> None:
        for record in results:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            pull.records += 1
            published = record.get("dateparution") if isinstance(record, dict) else None
            if published:
                day = dt.date.fromisoformat(str(published)[:10])
                pull.last_date = max(pull.last_date or day, day)

    def slice_(lo: dt.date, hi: dt.date, deps: Sequence[str]) -> None:
        first = page(lo, hi, deps, 0, min(page_size, offset_cap))
        total = int(first.get("total_count") or 0)
        if total > offset_cap:
            if lo < hi:  # too many for one query: halve the date range
                mid = lo + (hi - lo) // 2
                slice_(lo, mid, deps)
                slice_(mid + dt.timedelta(days=1), hi, deps)
                return
            split = list(deps) or list(all_departements)
            if len(split) > 1:  # one day is still too much: one département at a time
                for dep in split:
                    slice_(lo, hi, [dep])
                return
            pull.truncated.append(f"{lo.isoformat()} {','.join(deps)}: {total} annonces, {offset_cap} lues")
        write(first["results"])
        offset = len(first["results"])
        while offset < min(total, offset_cap) and first["results"]:
            body = page(lo, hi, deps, offset, min(page_size, offset_cap - offset))
            if not body["results"]:
                break
            write(body["results"])
            offset += len(body["results"])

    slice_(since, until, list(departements))
    return pull
