"""Operators manage ambassadors and offers: list, add or edit one, import a CSV, export CSV.

Adding or editing one goes through the very parser of the CSV import (a one-line file with the same
columns), so the dashboard and `declic ambassadors import` accept and refuse exactly the same things.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse

from orchestrator.app import registry
from store import accounts
from store.journeys import AMBASSADOR_COLUMNS, OFFER_COLUMNS, registry_rows
from web.auth import ScopeDep, require_csrf
from web.dashboard import csv_response, render
from web.deps import AppDep, EngineDep

router = APIRouter(prefix="/tableau/registre", include_in_schema=False)
# The page's kind -> (its CSV columns, the registry's kind in the store and the app layer, its title).
KINDS = {
    "ambassadeurs": (AMBASSADOR_COLUMNS, "ambassadors", "Ambassadeurs"),
    "offres": (OFFER_COLUMNS, "offers", "Offres"),
}
LIST_FIELDS = {"families", "nafs", "communes", "epcis", "departements", "channels", "territory"}
# The CSV columns "epci" and "naf" are stored as "epcis" and "nafs".
COLUMN_FIELD = {"epci": "epcis", "naf": "nafs"}


def _operator(scope: accounts.Scope) -> None:
    if not scope.is_operator:
        raise HTTPException(403, "Seuls les opérateurs gèrent les ambassadeurs et les offres.")


def _kind(kind: str):
    if kind not in KINDS:
        raise HTTPException(404, "Registre inconnu.")
    return KINDS[kind]


def _cell(row: Any, column: str) -> str:
    value = getattr(row, COLUMN_FIELD.get(column, column), None)
    if column in LIST_FIELDS or COLUMN_FIELD.get(column, column) in LIST_FIELDS:
        return "|".join(value or [])
    return "" if value is None else str(value)


def _rows(engine, kind: str) -> list[dict[str, str]]:
    columns, rows_kind, _ = KINDS[kind]
    with engine.connect() as conn:
        rows = registry_rows(conn, rows_kind)
    return [
        {"id": str(r.id), "active": "oui" if r.active else "non", **{c: _cell(r, c) for c in columns}}
        for r in rows
    ]


def _csv(columns: tuple[str, ...], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _page(request, scope, engine, kind: str, *, form=None, result=None, status_code=200):
    columns, _, title = KINDS[kind]
    return render(
        request,
        scope,
        "dash_registry.html",
        status_code=status_code,
        kind=kind,
        kinds=KINDS,
        title=title,
        columns=columns,
        items=_rows(engine, kind),
        form=form or {},
        result=result,
    )


@router.get("/{kind}", response_class=HTMLResponse)
async def registry_page(
    request: Request, kind: str, scope: ScopeDep, engine: EngineDep, cle: str | None = None
):
    """The list, with a form to add one (or edit the one named by `cle`) and a CSV import."""
    _operator(scope)
    _kind(kind)
    form = {}
    if cle:
        form = next((r for r in await run_in_threadpool(_rows, engine, kind) if r["key"] == cle), None)
        if form is None:
            raise HTTPException(404, "Introuvable.")
    return await run_in_threadpool(lambda: _page(request, scope, engine, kind, form=form))


@router.get("/{kind}/export.csv")
async def registry_csv(kind: str, scope: ScopeDep, engine: EngineDep):
    """The whole registry as a CSV that the import accepts back."""
    _operator(scope)
    columns, _, _ = _kind(kind)
    return csv_response(_csv(columns, await run_in_threadpool(_rows, engine, kind)), f"{kind}.csv")


@router.post("/{kind}", response_class=HTMLResponse)
async def registry_write(request: Request, kind: str, scope: ScopeDep, declic: AppDep):
    """Add or edit one (form fields), or import a CSV file (field `fichier`)."""
    _operator(scope)
    engine = declic.engine
    columns, rows_kind, _ = _kind(kind)
    form = await request.form()
    require_csrf(request, str(form.get("csrf") or ""))
    upload = form.get("fichier")
    if upload is not None and hasattr(upload, "read"):
        text = (await upload.read()).decode("utf-8-sig", errors="replace")
        values: dict[str, str] = {}
    else:
        values = {c: str(form.get(c) or "").strip() for c in columns}
        text = _csv(columns, [values])
    if text.count("\n") < 1:
        text += "\n"
    imported, rejects = await run_in_threadpool(registry.import_rows, declic, rows_kind, text)
    result = {"imported": imported, "rejects": rejects}
    status = 400 if rejects and not imported else 200
    return await run_in_threadpool(
        lambda: _page(
            request, scope, engine, kind, form=values if rejects else {}, result=result, status_code=status
        )
    )
