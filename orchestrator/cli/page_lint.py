"""The landing and diagnostic pages as the web app renders them, for `declic templates lint`.

The linting rules are pure and live in `templates.lint`; rendering the owner's pages needs the web app's own Jinja
environment (its filters and globals) and its sample answers, so that part stands here, above web/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from jinja2 import FileSystemLoader

from orchestrator.app.callbacks import SLOTS
from orchestrator.core.campaign_spec import NOT_FOR_ME_REASONS
from templates.lint import Report, lint_pages
from templates.preview import matrix_contexts
from web.diagnostic import sample_pages
from web.public import pages


def page_contexts() -> list[tuple[str, str, dict[str, Any]]]:
    """(page, label, context) for the landing and diagnostic pages as the web app renders them: every state of
    the landing page, the diagnostic's questions and its results, over the lint matrix's extreme contexts."""
    out = []
    for label, ctx in [*matrix_contexts("alimentation", "creation")[:2], *matrix_contexts("autre", "creation")[:2]]:
        base = {"token": "t", "business": ctx["business"], "ambassador": ctx["ambassador"], "offers": ctx["offers"],
                "sender": ctx["sender"], "peer_tel": "tel:+33612345678", "sender_tel": "tel:+33475000000",
                "csrf": "c", "unsubscribe": ctx["links"]["unsubscribe"], "slots": {k: v[0] for k, v in SLOTS.items()},
                "reasons": NOT_FOR_ME_REASONS, "form": {}, "errors": {}, "campaign": ctx.get("campaign", {})}
        for done in (None, "rappel", "rappel_deja", "pas_pour_moi", "plus_d_appel"):
            out.append(("landing.html", f"{label}, état {done or 'initial'}", dict(base, done=done)))
        for diag_label, diag in sample_pages(ctx):
            out.append(("diagnostic.html", f"{label}, {diag_label}", diag))
    return out


def render_page(page: str, context: dict[str, Any]) -> str:
    """A page of web/pages rendered to HTML by the web app's Jinja environment."""
    return pages.env.get_template(page).render(**context)


def lint_web_pages(lexicon: str | None = None) -> Report:
    """Lint the landing and diagnostic pages' texts (jargon, sentences, readability, raw codes, INSEE labels)."""
    folder = Path(cast(FileSystemLoader, pages.env.loader).searchpath[0])  # Jinja2Templates(directory=...)
    return lint_pages(page_contexts(), render_page, folder, lexicon)
