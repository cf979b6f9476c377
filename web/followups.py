"""Follow-ups in the dashboard (issue 16, point 3): an ambassador's or adviser's businesses to follow up at 30 and
90 days, with a one-line outcome from a fixed list; the operator also sees the missed ones (still open 7 days after
their date), as a count and a list."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse

from orchestrator.app import followups as followup_service
from store.followups import OUTCOMES, followups
from triggers.model import ADOPTION_CATEGORIES
from web.auth import ScopeDep, require_csrf
from web.dashboard import render
from web.deps import AppDep

router = APIRouter(prefix="/tableau", include_in_schema=False)


@router.get("/suivis", response_class=HTMLResponse)
async def followups_page(request: Request, scope: ScopeDep, declic: AppDep):
    """The follow-ups the user may see, the earliest first; for the operator, the missed ones first."""
    today = declic.today()

    def read():
        with declic.engine.connect() as conn:
            clause = followup_service.scope_clause(conn, scope)
            missed = followups(conn, clause, today=today, missed_only=True) if scope.is_operator else []
            return followups(conn, clause, today=today), missed

    items, missed = await run_in_threadpool(read)
    return render(request, scope, "dash_followups.html", items=items, missed=missed, outcomes=OUTCOMES,
                  adoption_categories=ADOPTION_CATEGORIES)


@router.post("/suivis/{followup_id}")
async def followup_outcome(
    request: Request,
    followup_id: int,
    scope: ScopeDep,
    declic: AppDep,
    outcome: Annotated[str, Form(max_length=20)] = "",
    category: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=300)] = "",
    csrf: Annotated[str, Form()] = "",
):
    """Record a follow-up's outcome: a commencé à utiliser (which tool) / en cours / abandonné, and why."""
    require_csrf(request, csrf)

    try:
        done = await run_in_threadpool(lambda: followup_service.complete(
            declic, followup_id, scope, outcome=outcome, category=category or None, note=note))
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc
    if not done:
        raise HTTPException(404, "Suivi introuvable.")
    return RedirectResponse("/tableau/suivis", status_code=303)
