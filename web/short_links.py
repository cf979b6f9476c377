"""`/s/<code>`: the short link of SMS and letters (`orchestrator.core.short_codes`), read back with the secret.

It leads where `/r/<token>` leads: the click is recorded on the message and the owner lands on the page of
that message; `/s/<code>/diagnostic` (printed on letters, read aloud on calls) opens the self-diagnostic of that
message straight away. Only a message that left (it has a send date) and is no older than a click token
resolves; anything else gets the same French page as an unknown link, so guessing tells nothing.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from orchestrator.app import answers
from orchestrator.app.bootstrap import App
from orchestrator.core.links import MAX_AGE, make_token
from orchestrator.core.short_codes import CodeError, read_code
from web.deps import AppDep
from web.public import _error

router = APIRouter(include_in_schema=False)
UNKNOWN = "lien inconnu ou expiré"
TOO_MANY = ("trop de liens inconnus depuis votre adresse : vérifiez le lien du message, puis réessayez dans "
            "un quart d'heure")


class MissLimiter:
    """Five characters cannot carry a signature against blind guessing: an address that tries many unknown
    codes is held back for a while (per web process; the guess rate of a spread-out attacker stays bounded by
    the number of its addresses)."""

    def __init__(self, limit: int = 30, window: float = 900.0) -> None:
        self.limit, self.window = limit, window
        self._misses: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, source: str, now: float) -> deque[float]:
        misses = self._misses.setdefault(source, deque())
        while misses and misses[0] <= now - self.window:
            misses.popleft()
        return misses

    def blocked(self, source: str) -> bool:
        with self._lock:
            return len(self._recent(source, time.monotonic())) >= self.limit

    def missed(self, source: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(source, now).append(now)
            if len(self._misses) > 10_000:  # forget addresses whose misses are all old
                for key in [k for k, v in self._misses.items() if not v or v[-1] <= now - self.window]:
                    del self._misses[key]


def _limiter(request: Request) -> MissLimiter:
    # One per app (and so per web process); created on first use.
    state = request.app.state
    if not hasattr(state, "short_link_misses"):
        state.short_link_misses = MissLimiter()
    return state.short_link_misses


class TooManyMisses(Exception):
    """This address tried too many unknown codes lately."""


def _short_message(request: Request, code: str, declic: App, to: str | None):
    """The message of a short code, its click recorded; None (and the unknown-link page) otherwise."""
    source, misses = (request.client.host if request.client else ""), _limiter(request)
    if misses.blocked(source):
        raise TooManyMisses
    message_id = _resolve(code, declic, to)
    if message_id is None:
        misses.missed(source)
    return message_id


def _resolve(code: str, declic: App, to: str | None):
    try:
        message_id = read_code(declic.settings.resolved_secret, code)
    except CodeError:
        return None
    # A code resolves only for a message that left, and no longer than a click token lives.
    if not answers.short_click(declic, message_id, dt.timedelta(seconds=MAX_AGE["r"]), to):
        return None
    return message_id


def _answer(request: Request, code: str, declic: App, to: str | None):
    """The message id of a code, or the page to answer: unknown link (404) or too many misses (429)."""
    try:
        message_id = _short_message(request, code, declic, to)
    except TooManyMisses:
        reply = _error(request, TOO_MANY, 429)
        reply.headers["Retry-After"] = str(int(_limiter(request).window))
        return None, reply
    return message_id, (None if message_id is not None else _error(request, UNKNOWN))


@router.get("/s/{code}")
def short_click(request: Request, code: str, declic: AppDep):
    """Record a click on a short link, then go to the landing page of that message."""
    message_id, refusal = _answer(request, code, declic, None)
    if refusal is not None:
        return refusal
    token = make_token(declic.settings.resolved_secret, "m", message_id, now=declic.now())
    return RedirectResponse(f"/m/{token}", status_code=303)


@router.get("/s/{code}/diagnostic")
def short_diagnostic(request: Request, code: str, declic: AppDep):
    """The short link of the self-diagnostic: the click is recorded, the owner lands on the five questions."""
    message_id, refusal = _answer(request, code, declic, "diagnostic")
    if refusal is not None:
        return refusal
    token = make_token(declic.settings.resolved_secret, "m", message_id, now=declic.now())
    return RedirectResponse(f"/m/{token}/diagnostic?source=short", status_code=303)
