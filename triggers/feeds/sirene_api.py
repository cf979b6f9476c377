"""INSEE's Sirene API as a feed: establishments changed since the last run
(`dateDernierTraitementEtablissement`), paged with the API's cursor, within its rate limit.

Each establishment of the JSON answer is laid flat into a row of the StockEtablissement CSV (the API and
the files share their variable names), so the Sirene file reader and its snapshot rules do the rest.
The answer also carries the establishment's legal unit (`uniteLegale`): its `categorieEntreprise` (PME, ETI,
GE) and `categorieJuridiqueUniteLegale` (INSEE's four-digit legal form) go in two more columns, which the reader
stores as the company category (it decides the e-invoicing dates, see triggers/calendar.py) and legal form
(segments select on it); the stock files get both from StockUniteLegale (triggers/sirene_ul.py).
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from typing import IO, Any

from triggers.feeds.http import FeedHttp, FetchError
from triggers.sirene import COLUMNS_54, LEGAL_FORM

KEY_HEADER = "X-INSEE-Api-Key-Integration"
# The establishment columns, then the legal unit's category and legal form (read by name; absent from the stock
# files).
COLUMNS = (*COLUMNS_54, "categorieEntreprise", LEGAL_FORM)
PAGE_SIZE = 1000


@dataclass
class SirenePull:
    """What one pull brought: establishments written, pages read, the latest processing instant seen."""

    rows: int = 0
    pages: int = 0
    last_processed: str | None = None  # dateDernierTraitementEtablissement, "YYYY-MM-DDTHH:MM:SS"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flat_row(etablissement: dict[str, Any]) -> dict[str, str]:
    """One API establishment as a StockEtablissement row: own fields, addresses, current period, and the
    legal unit's category and legal form when the answer has them."""
    flat: dict[str, Any] = {k: v for k, v in etablissement.items() if not isinstance(v, (dict, list))}
    for block in ("adresseEtablissement", "adresse2Etablissement"):
        flat.update(etablissement.get(block) or {})
    periods = etablissement.get("periodesEtablissement") or []
    current = next((p for p in periods if not p.get("dateFin")), periods[0] if periods else {})
    flat.update({k: v for k, v in current.items() if not k.startswith("changement") and k != "dateFin"})
    unite = etablissement.get("uniteLegale")
    unite = unite if isinstance(unite, dict) else {}
    flat["categorieEntreprise"] = unite.get("categorieEntreprise")
    flat[LEGAL_FORM] = unite.get(LEGAL_FORM)
    return {column: _cell(flat.get(column)) for column in COLUMNS}


def pull_sirene(
    http: FeedHttp, url: str, out: IO[str], *, since: dt.datetime, key: str | None, page_size: int = PAGE_SIZE
) -> SirenePull:
    """Write every establishment processed since `since` to `out` as a StockEtablissement CSV."""
    writer = csv.DictWriter(out, fieldnames=COLUMNS, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writeheader()
    headers = {"Accept": "application/json"}
    if key:
        headers[KEY_HEADER] = key
    pull = SirenePull()
    cursor = "*"
    query = f"dateDernierTraitementEtablissement:[{since.strftime('%Y-%m-%dT%H:%M:%S')} TO *]"
    while True:
        status, body = http.get_json(
            url,
            params={"q": query, "nombre": page_size, "curseur": cursor},
            headers=headers,
            ok_statuses=(200, 404),
        )
        pull.pages += 1
        header = body.get("header") if isinstance(body, dict) else None
        if not isinstance(header, dict):
            raise FetchError("réponse Sirene inattendue (pas d'en-tête 'header')")
        if status == 404:  # the API's way of saying "nothing matches"
            return pull
        for etablissement in body.get("etablissements") or []:
            writer.writerow(flat_row(etablissement))
            pull.rows += 1
            processed = etablissement.get("dateDernierTraitementEtablissement")
            if processed and (pull.last_processed is None or processed > pull.last_processed):
                pull.last_processed = processed
        following = header.get("curseurSuivant")
        if not following or following == header.get("curseur") or not body.get("etablissements"):
            return pull
        cursor = following
