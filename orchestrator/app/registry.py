"""The registry of ambassadors and offers, the application side: rows added, edited or imported from a CSV go
through the one parser of `declic ambassadors import` / `declic offers import` (the same rows accepted and refused,
each refusal with its line, field and reason)."""

from __future__ import annotations

from orchestrator.app.bootstrap import App
from store.journeys import Reject, import_ambassadors, import_offers

IMPORTERS = {"ambassadors": import_ambassadors, "offers": import_offers}


def import_rows(app: App, kind: str, text: str) -> tuple[int, list[Reject]]:
    """Create or update (by key) the `kind` rows ("ambassadors" or "offers") of a CSV text; returns (imported,
    rejects)."""
    return IMPORTERS[kind](app.engine, text, now=app.now())
