"""`/i/<token>/<answer>`: an intermediary's one-click answer about one client of a relay digest (issue 16, point 1).

The token (orchestrator.core.links, purpose "a") carries only the relay message's id; the answer is the last word of the
URL: `occupe` (je m'en occupe), `fait` (déjà fait), `pas-concerne` (pas concerné). GET shows what will be recorded
and a button (mail scanners follow links: nothing changes on GET); POST records it as an interaction of that
business's enrollment. "Je m'en occupe" and "déjà fait" stop the campaign's later direct messages to the business.
No CSRF token, as for unsubscribing: the signed token in the URL is the proof.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from orchestrator.app import answers
from orchestrator.app.bootstrap import App
from orchestrator.core.links import TokenError, read_token
from store.intermediaries import ANSWERS
from web.deps import AppDep

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))


def _message(request: Request, declic: App, token: str, answer: str):
    """The relay message behind a valid link, else an error page (as a second value)."""
    if answer not in ANSWERS:
        return None, _error(request, "réponse inconnue")
    try:
        message_id = read_token(declic.settings.resolved_secret, "a", token, now=declic.now())
    except TokenError as exc:
        return None, _error(request, str(exc))
    msg = answers.message(declic, message_id)
    if msg is None or msg.channel != "relay":
        return None, _error(request, "message inconnu")
    return msg, None


def _error(request: Request, reason: str) -> HTMLResponse:
    return pages.TemplateResponse(request, "error.html", {"reason": reason}, status_code=404)


def _page(request: Request, msg, token: str, answer: str, done: bool) -> HTMLResponse:
    business = (msg.context or {}).get("business") or {}
    return pages.TemplateResponse(request, "relay_answer.html", {
        "token": token, "answer": answer, "label": ANSWERS[answer][1], "done": done,
        "client": business.get("name") or f"SIRET {business.get('siret', '')}",
        "stops": ANSWERS[answer][0] in ("relay_taken", "relay_done"),
        "others": [(word, label) for word, (_kind, label) in ANSWERS.items() if word != answer],
    })


@router.get("/i/{token}/{answer}", response_class=HTMLResponse)
def answer_page(request: Request, token: str, answer: str, declic: AppDep):
    """What the click will record, with one button to confirm."""
    msg, error = _message(request, declic, token, answer)
    return error or _page(request, msg, token, answer, done=False)


@router.post("/i/{token}/{answer}", response_class=HTMLResponse)
def answer(request: Request, token: str, answer: str, declic: AppDep):
    """Record the intermediary's answer (twice the same answer is recorded once)."""
    msg, error = _message(request, declic, token, answer)
    if error is not None:
        return error
    answers.relay_answer(declic, msg, answer)
    return _page(request, msg, token, answer, done=True)
