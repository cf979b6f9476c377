"""The self-diagnostic's web side: who the owner's person is, which offers can be the next step (those the message
showed, then the registry's that fit the business), what is stored, and what the page shows. The questions, levels
and the choice of the next step are `orchestrator.core.diagnostic`'s (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.engine import Connection

from orchestrator.core.diagnostic import (
    APPETITE_LEVELS,
    MATURITY_LEVELS,
    VERSION,
    Levels,
    NextStep,
    levels,
    next_step,
    parse_answers,
    questions,
)
from orchestrator.core.planner import pick_offers
from store.journeys import offer_views
from store.planning import business_view_by_id

MISSING = "Répondez à chaque question (une case par question, ou plusieurs là où c'est indiqué)."
MAX_OFFERS = 12


def family_of(ctx: Mapping[str, Any]) -> str | None:
    return (ctx.get("business") or {}).get("family")


def person_of(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """The person of the next step: the ambassador or adviser the business was matched to (the planner put the
    campaign's contact there when none fitted), else the sender."""
    amb = ctx.get("ambassador") or {}
    if amb.get("name"):
        return {k: amb.get(k) for k in ("name", "metier", "phone", "email", "commune", "role")}
    sender = ctx.get("sender") or {}
    return {"name": sender.get("name") or "votre contact", "metier": None, "phone": sender.get("phone"),
            "email": sender.get("email"), "commune": None, "role": "conseiller"}


def registry_offers(conn: Connection, business_id: int | None, trigger_type: str) -> list[dict[str, Any]]:
    """The registry's active offers that fit the business's trade and place, the most local first."""
    if business_id is None:
        return []
    view = business_view_by_id(conn, business_id)
    if view is None:
        return []
    return [o.as_context() for o in pick_offers(view, trigger_type, offer_views(conn), MAX_OFFERS)]


def candidate_offers(conn: Connection, msg) -> list[dict[str, Any]]:
    """The message's offers, then the registry's that fit, once each (by title)."""
    ctx = msg.context or {}
    trigger = (ctx.get("trigger") or {}).get("type") or ""
    seen: set[str] = set()
    out = []
    for offer in [*(ctx.get("offers") or []), *registry_offers(conn, msg.business_id, trigger)]:
        title = str(offer.get("title") or "")
        if title and title not in seen:
            seen.add(title)
            out.append(offer)
    return out


def stored_data(answers: dict[str, Any], lv: Levels, step: NextStep, family: str | None, source: str
                ) -> dict[str, Any]:
    """The interaction's data: versioned answers (stable codes) and both levels, the step shown, the source."""
    return {"version": VERSION, "family": family, "answers": answers, "score": lv.score, "maturity": lv.maturity,
            "appetite_score": lv.appetite_score, "appetite": lv.appetite, "next_step": step.stored(),
            "offer": (step.offer or {}).get("title"), "source": source}


def form_values(form) -> dict[str, list[str]]:
    """Each posted field's values (a starlette FormData or a plain mapping of strings or lists)."""
    getlist = getattr(form, "getlist", None)
    out: dict[str, list[str]] = {}
    for key in form.keys():
        values = getlist(key) if getlist else form[key]
        out[key] = [str(v) for v in (values if isinstance(values, list | tuple) else [values])]
    return out


def page_context(ctx: Mapping[str, Any], token: str, csrf: str, *, posted: dict[str, list[str]] | None = None,
                 error: str | None = None, missing: list[str] | None = None, result: dict[str, Any] | None = None,
                 source: str = "landing") -> dict[str, Any]:
    """What diagnostic.html (and the landing page's diagnostic section) render."""
    return {"token": token, "csrf": csrf, "business": ctx.get("business") or {},
            "questions": questions(family_of(ctx)), "posted": posted or {}, "error": error,
            "missing": missing or [], "result": result, "source": source, "person": person_of(ctx)}


def result_context(lv: Levels, step: NextStep) -> dict[str, Any]:
    return {"levels": lv, "maturity": MATURITY_LEVELS[lv.maturity],
            "appetite": APPETITE_LEVELS[lv.appetite] if lv.appetite else None, "step": step}


def diagnose(form, ctx: Mapping[str, Any], offers: list[dict[str, Any]]
             ) -> tuple[dict[str, Any] | None, Levels | None, NextStep | None, list[str]]:
    """(answers, levels, next step, []) for a complete form, else (None, None, None, the questions missing)."""
    answers, missing = parse_answers(form_values(form), family_of(ctx))
    if answers is None:
        return None, None, None, missing
    lv = levels(answers)
    return answers, lv, next_step(answers, offers, person_of(ctx), family_of(ctx)), []


def sample_pages(ctx: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, context) of diagnostic.html for the template linter: the questions, a missing answer, and the
    results of a beginner short of time, of one on the way and of a well-equipped owner."""
    base = page_context(ctx, "t", "c")
    out = [("questions", base), ("réponse manquante", dict(base, error=MISSING, missing=["time"]))]
    samples = {
        "premiers pas, pas le temps": {"phone": [], "invoices": "nobody", "time": ["none"], "chores": [],
                                       "trade": ["by_hand"]},
        "en route": {"phone": ["email", "photos"], "invoices": "accountant", "time": ["one_hour"],
                     "chores": ["quotes_invoices"], "trade": ["partly"]},
        "bien équipé": {"phone": ["email", "photos", "bank"], "invoices": "software",
                        "time": ["hours"], "chores": ["booking", "payment", "management"], "trade": ["tool"]},
    }
    for label, values in samples.items():
        form = {k: v if isinstance(v, list) else [v] for k, v in values.items()}
        answers, lv, step, _ = diagnose(form, ctx, list(ctx.get("offers") or []))
        out.append((label, dict(base, result=result_context(lv, step))))
    return out
