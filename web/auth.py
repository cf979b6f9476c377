"""Dashboard sign-in: argon2 passwords, a signed session cookie, CSRF on every form.

The session (Starlette's SessionMiddleware, signed with the settings' secret) holds the user id, the
user's session epoch and a random CSRF id; every dashboard form carries `make_csrf(secret, csrf id)`.
Signing in replaces the session, so an id planted before sign-in is worthless after it. Signing out,
a new password and disabling the user bump the epoch stored with the user: every cookie issued before
stops being accepted, on every machine.

Password checks are costly on purpose (argon2, 64 MiB each): a web process runs at most
`signin_concurrency` at once and answers 429 beyond, and the store limits the checks per e-mail and
source address (store.accounts.begin_signin).
"""

from __future__ import annotations

import math
import secrets
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from orchestrator.app import sessions
from store.accounts import Scope, SignInLimits, authenticate, scope_of, user_by_id
from web.csrf import check_csrf, make_csrf
from web.deps import AppDep, EngineDep, settings_of

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))


LIMITS = SignInLimits()  # 5 checks per e-mail and address, 30 per address, within 15 minutes
BUSY_RETRY_SECONDS = 5


class SignInRequired(Exception):
    """Raised by the scope dependency when nobody is signed in (answered by a redirect to sign-in)."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def csrf_id(request: Request) -> str:
    """The session's CSRF id, created on first use."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(24)
    return request.session["csrf"]


def csrf_token(request: Request) -> str:
    """The token to put in this session's forms."""
    return make_csrf(settings_of(request).resolved_secret, csrf_id(request))


def require_csrf(request: Request, token: str | None) -> None:
    """403 unless `token` was made for this session."""
    if not check_csrf(settings_of(request).resolved_secret, request.session.get("csrf", ""), token):
        raise HTTPException(403, "formulaire périmé : rechargez la page")


def safe_next(path: str | None) -> str:
    """Only a local path may follow sign-in (no open redirect)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/tableau"


def current_scope(request: Request, engine: EngineDep) -> Scope:
    """The signed-in user's scope; redirects to sign-in when there is none, when the user was disabled, or
    when the session was opened before the user's last sign-out or password change."""
    user_id = request.session.get("uid")
    user = user_by_id(engine, user_id) if isinstance(user_id, int) else None
    if user is None or request.session.get("epoch") != user.session_epoch:
        request.session.pop("uid", None)
        request.session.pop("epoch", None)
        raise SignInRequired(request.url.path)
    return scope_of(user)


def _hash_slots(request: Request, settings) -> threading.BoundedSemaphore:
    """This app's password-check slots (created on first use; no await between the look and the set)."""
    slots = getattr(request.app.state, "signin_slots", None)
    if slots is None:
        slots = request.app.state.signin_slots = threading.BoundedSemaphore(settings.signin_concurrency)
    return slots


def _source(request: Request) -> str:
    """The address the attempt comes from (the proxy's, unless the server is told to trust its headers)."""
    return request.client.host if request.client else "inconnue"


def _minutes(seconds: float) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return "une minute" if minutes == 1 else f"{minutes} minutes"


ScopeDep = Annotated[Scope, Depends(current_scope)]


@router.get("/connexion", response_class=HTMLResponse)
def sign_in_page(request: Request, suite: str = "/tableau") -> HTMLResponse:
    """The sign-in form."""
    return pages.TemplateResponse(
        request,
        "signin.html",
        {"csrf": csrf_token(request), "suite": safe_next(suite), "error": None, "email": ""},
    )


@router.post("/connexion", response_class=HTMLResponse)
async def sign_in(
    request: Request,
    declic: AppDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "/tableau",
):
    """Check the password; on success a fresh session and the page asked for."""
    require_csrf(request, csrf)

    def page(error: str, status_code: int, retry_after: int | None = None):
        return pages.TemplateResponse(
            request,
            "signin.html",
            {"csrf": csrf_token(request), "suite": safe_next(suite), "email": email, "error": error},
            status_code=status_code,
            headers={"Retry-After": str(retry_after)} if retry_after else None,
        )

    slots = _hash_slots(request, declic.settings)
    if not slots.acquire(blocking=False):  # every slot is checking a password: answer now, hold no memory
        return page("Trop de connexions en même temps. Réessayez dans quelques secondes.", 429, BUSY_RETRY_SECONDS)
    try:
        source = _source(request)
        # Recorded before the check, counted in the store: every web process (and machine) shares the limit.
        attempt = await run_in_threadpool(sessions.begin_signin, declic, email, source, LIMITS)
        if not attempt.allowed:
            wait = attempt.retry_after.total_seconds()
            return page(f"Trop d'essais. Réessayez dans {_minutes(wait)}.", 429, math.ceil(wait))
        user = await run_in_threadpool(authenticate, declic.engine, email, password, declic.now())
    finally:
        slots.release()
    if user is None:
        return page("E-mail ou mot de passe incorrect.", 401)
    await run_in_threadpool(sessions.signin_succeeded, declic, email, source, LIMITS)
    request.session.clear()
    request.session["uid"] = user.id
    request.session["epoch"] = user.session_epoch
    csrf_id(request)
    target = (
        "/tableau/appels"
        if user.role == "ambassador" and safe_next(suite) == "/tableau"
        else safe_next(suite)
    )
    return RedirectResponse(target, status_code=303)


@router.post("/deconnexion")
async def sign_out(request: Request, declic: AppDep, csrf: Annotated[str, Form()] = ""):
    """End the session, and every other session of the same user (a copied cookie dies with it)."""
    require_csrf(request, csrf)
    user_id = request.session.get("uid")
    if isinstance(user_id, int):
        await run_in_threadpool(sessions.sign_out_everywhere, declic, user_id)
    request.session.clear()
    return RedirectResponse("/connexion", status_code=303)
