"""Dashboard sign-in: argon2 passwords, a signed session cookie, CSRF on every form.

The session (Starlette's SessionMiddleware, signed with the settings' secret) holds the user id and a
random CSRF id; every dashboard form carries `make_csrf(secret, csrf id)`. Signing in replaces the
session, so an id planted before sign-in is worthless after it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from store.accounts import (
    Scope,
    authenticate,
    clear_signin_failures,
    recent_signin_failures,
    record_signin_failure,
    scope_of,
    user_by_id,
)
from store.models import utcnow
from web.csrf import check_csrf, make_csrf
from web.deps import EngineDep, SettingsDep

router = APIRouter(include_in_schema=False)
pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))


MAX_FAILURES = 5  # wrong passwords for one e-mail ...
FAILURE_WINDOW = dt.timedelta(minutes=15)  # ... within this time, then sign-in waits for the window to pass


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
    return make_csrf(request.app.state.settings.resolved_secret, csrf_id(request))


def require_csrf(request: Request, token: str | None) -> None:
    """403 unless `token` was made for this session."""
    if not check_csrf(request.app.state.settings.resolved_secret, request.session.get("csrf", ""), token):
        raise HTTPException(403, "formulaire périmé : rechargez la page")


def safe_next(path: str | None) -> str:
    """Only a local path may follow sign-in (no open redirect)."""
    if path and path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/tableau"


def current_scope(request: Request, engine: EngineDep) -> Scope:
    """The signed-in user's scope; redirects to sign-in when there is none."""
    user_id = request.session.get("uid")
    user = user_by_id(engine, user_id) if isinstance(user_id, int) else None
    if user is None:
        request.session.pop("uid", None)
        raise SignInRequired(request.url.path)
    return scope_of(user)


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
    engine: EngineDep,
    settings: SettingsDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form()] = "",
    suite: Annotated[str, Form()] = "/tableau",
):
    """Check the password; on success a fresh session and the page asked for."""
    require_csrf(request, csrf)
    key, now = email.strip().lower(), utcnow()
    # Counted in the store, so every web process (and machine) shares the lockout; with argon2 making each
    # try costly, guessing a password by the web form stays slow however many workers serve it.
    if await run_in_threadpool(recent_signin_failures, engine, key, now - FAILURE_WINDOW) >= MAX_FAILURES:
        return pages.TemplateResponse(
            request,
            "signin.html",
            {
                "csrf": csrf_token(request),
                "suite": safe_next(suite),
                "email": email,
                "error": "Trop d'essais. Réessayez dans un quart d'heure.",
            },
            status_code=429,
        )
    user = await run_in_threadpool(authenticate, engine, email, password)
    if user is None:
        await run_in_threadpool(record_signin_failure, engine, key, now, now - FAILURE_WINDOW)
        return pages.TemplateResponse(
            request,
            "signin.html",
            {
                "csrf": csrf_token(request),
                "suite": safe_next(suite),
                "email": email,
                "error": "E-mail ou mot de passe incorrect.",
            },
            status_code=401,
        )
    await run_in_threadpool(clear_signin_failures, engine, key)
    request.session.clear()
    request.session["uid"] = user.id
    csrf_id(request)
    target = (
        "/tableau/appels"
        if user.role == "ambassador" and safe_next(suite) == "/tableau"
        else safe_next(suite)
    )
    return RedirectResponse(target, status_code=303)


@router.post("/deconnexion")
def sign_out(request: Request, csrf: Annotated[str, Form()] = ""):
    """End the session."""
    require_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/connexion", status_code=303)
