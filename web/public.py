"""Routes the business owner reaches from a message: click redirect, landing page, unsubscribe."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from store.models import Interaction, Message, utcnow
from store.suppressions import unsubscribe_message
from web.deps import EngineDep, SettingsDep
from web.tokens import TokenError, make_token, read_token

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))
MESSAGES = Message.__table__
INTERACTIONS = Interaction.__table__


def _error(request: Request, reason: str) -> HTMLResponse:
    return pages.TemplateResponse(request, "error.html", {"reason": reason}, status_code=404)


@router.get("/u/{token}", response_class=HTMLResponse)
def unsubscribe_page(request: Request, token: str, settings: SettingsDep) -> HTMLResponse:
    """Confirmation page: nothing changes on GET (mail scanners follow links)."""
    try:
        read_token(settings.resolved_secret, "u", token)
    except TokenError as exc:
        return _error(request, str(exc))
    return pages.TemplateResponse(request, "unsubscribe.html", {"token": token, "done": False})


@router.post("/u/{token}", response_class=HTMLResponse)
def unsubscribe(request: Request, token: str, settings: SettingsDep, engine: EngineDep) -> HTMLResponse:
    """Record the opt-out (one click, RFC 8058: mail clients POST `List-Unsubscribe=One-Click`)."""
    try:
        message_id = read_token(settings.resolved_secret, "u", token)
    except TokenError as exc:
        return _error(request, str(exc))
    with engine.begin() as conn:
        if not unsubscribe_message(conn, message_id):
            return _error(request, "message inconnu")
    return pages.TemplateResponse(request, "unsubscribe.html", {"token": token, "done": True})


@router.get("/r/{token}")
def click(request: Request, token: str, settings: SettingsDep, engine: EngineDep):
    """Record a click, then go to the landing page of that message."""
    try:
        message_id = read_token(settings.resolved_secret, "r", token)
    except TokenError as exc:
        return _error(request, str(exc))
    with engine.begin() as conn:
        msg = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
        if msg is None:
            return _error(request, "message inconnu")
        conn.execute(INTERACTIONS.insert(), {
            "business_id": msg.business_id, "message_id": msg.id, "campaign_id": msg.campaign_id,
            "enrollment_id": msg.enrollment_id, "kind": "click", "at": utcnow(), "data": {},
        })
    return RedirectResponse(f"/m/{make_token(settings.resolved_secret, 'm', message_id)}", status_code=303)


@router.get("/m/{token}", response_class=HTMLResponse)
def landing(request: Request, token: str, settings: SettingsDep, engine: EngineDep) -> HTMLResponse:
    """The owner's page: the ambassador and the offers of that message, and the way to say no."""
    try:
        message_id = read_token(settings.resolved_secret, "m", token)
    except TokenError as exc:
        return _error(request, str(exc))
    with engine.connect() as conn:
        msg = conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id)).first()
    if msg is None or not msg.context:
        return _error(request, "message inconnu")
    ctx = msg.context
    return pages.TemplateResponse(request, "landing.html", {
        "business": ctx["business"], "ambassador": ctx["ambassador"], "offers": ctx.get("offers", []),
        "unsubscribe": f"/u/{make_token(settings.resolved_secret, 'u', message_id)}",
    })
