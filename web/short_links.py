"""`/s/<code>`: the short link of SMS and letters (`orchestrator.short_codes`), read back with the secret.

It leads where `/r/<token>` leads: the click is recorded on the message and the owner lands on the page of
that message; `/s/<code>/diagnostic` (printed on letters, read aloud on calls) opens the self-diagnostic of that
message straight away. Only a message that left (it has a send date) and is no older than a click token
resolves; anything else gets the same French page as an unknown link, so guessing tells nothing.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from orchestrator.links import MAX_AGE, make_token
from orchestrator.short_codes import CodeError, read_code
from store.conversions import message_row, record_interaction
from store.models import utcnow
from web.deps import EngineDep, SettingsDep
from web.public import _error

router = APIRouter(include_in_schema=False)
UNKNOWN = "lien inconnu ou expiré"


def _sent_recently(msg, now: dt.datetime) -> bool:
    sent = msg.sent_at
    if sent is None:
        return False
    if sent.tzinfo is None:  # SQLite gives naive UTC datetimes back
        sent = sent.replace(tzinfo=dt.UTC)
    return now - sent <= dt.timedelta(seconds=MAX_AGE["r"])


def _short_message(request: Request, code: str, settings, engine, to: str | None):
    """The message of a short code, its click recorded; None (and the unknown-link page) otherwise."""
    try:
        message_id = read_code(settings.resolved_secret, code)
    except CodeError:
        return None
    now = utcnow()
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    with engine.begin() as conn:
        msg = message_row(conn, message_id)
        if msg is None or not _sent_recently(msg, now):
            return None
        record_interaction(conn, msg, "click", {"via": "short", **({"to": to} if to else {})})
    return message_id


@router.get("/s/{code}")
def short_click(request: Request, code: str, settings: SettingsDep, engine: EngineDep):
    """Record a click on a short link, then go to the landing page of that message."""
    message_id = _short_message(request, code, settings, engine, None)
    if message_id is None:
        return _error(request, UNKNOWN)
    return RedirectResponse(f"/m/{make_token(settings.resolved_secret, 'm', message_id)}", status_code=303)


@router.get("/s/{code}/diagnostic")
def short_diagnostic(request: Request, code: str, settings: SettingsDep, engine: EngineDep):
    """The short link of the self-diagnostic: the click is recorded, the owner lands on the five questions."""
    message_id = _short_message(request, code, settings, engine, "diagnostic")
    if message_id is None:
        return _error(request, UNKNOWN)
    token = make_token(settings.resolved_secret, "m", message_id)
    return RedirectResponse(f"/m/{token}/diagnostic?source=short", status_code=303)
