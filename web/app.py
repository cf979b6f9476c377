"""The web app: partner API, owner pages, dashboard, health. Built around the App of `bootstrap()` (one
composition root: the same settings, store, clock, zone and channels as the CLI and the flows)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from orchestrator.app.bootstrap import App, bootstrap
from store.ops_metrics import store_answers
from triggers.partner_api import french_reason
from web import (
    api,
    auth,
    barometer,
    campaign_form,
    dashboard,
    followups,
    hooks,
    log_redaction,
    prometheus,
    public,
    registry,
    relay,
    short_links,
)
from web.limits import BodyLimitMiddleware
from web.security_headers import SWAGGER_CDN, SecurityHeadersMiddleware

SESSION_HOURS = 10  # a working day; then sign in again

# The API documentation: Swagger UI from its CDN, started by a static script (no inline script, see
# web/security_headers.py).
DOCS_PAGE = f"""<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>Déclic : API des partenaires</title>
<link rel="stylesheet" href="{SWAGGER_CDN}/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{SWAGGER_CDN}/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script src="/static/docs.js"></script>
</body>
</html>
"""


def create_app(app: App | None = None) -> FastAPI:
    """The FastAPI app serving `app` (the App of `bootstrap()`; by default one built from the environment, as
    `uvicorn web.app:create_app --factory` does). Routes reach it through `web.deps`."""
    declic = app or bootstrap()
    settings = declic.settings
    app = FastAPI(
        title="Déclic",
        version="0.1.0",
        description="Partner events in, plain-French outreach to very small businesses out.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.app = declic
    # Whatever server runs the app (declic serve, uvicorn --factory, gunicorn), its access log masks link tokens.
    log_redaction.install()
    # Signed (not readable by scripts: HttpOnly), Secure whenever the site is served over HTTPS.
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.resolved_secret,
        session_cookie="declic_session",
        max_age=SESSION_HOURS * 3600,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    # Outermost last: the body cap answers before any route reads a byte, the headers go on every answer.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware, https=settings.base_url.startswith("https://"))
    app.include_router(api.router)
    app.include_router(hooks.router)
    app.include_router(public.router)
    app.include_router(short_links.router)  # /s/<code>: short links of SMS and letters
    app.include_router(auth.router)
    app.include_router(campaign_form.router)
    app.include_router(registry.router)
    app.include_router(dashboard.router)
    app.include_router(relay.router)  # /i/<token>: intermediaries' answers (issue 16)
    app.include_router(prometheus.router)  # /metrics (issue 21)
    app.include_router(barometer.router)  # /tableau/barometre (issue 16)
    app.include_router(followups.router)  # /tableau/suivis (issue 16, point 3)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    pages = Jinja2Templates(directory=str(Path(__file__).parent / "pages"))

    @app.exception_handler(auth.SignInRequired)
    async def sign_in_first(request: Request, exc: auth.SignInRequired):
        return RedirectResponse(f"/connexion?suite={exc.next_path}", status_code=303)

    @app.exception_handler(public.LandingRefused)
    async def landing_refused(request: Request, exc: public.LandingRefused):
        return public.refused(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        # People get a page in French; programs (the partner API) keep FastAPI's JSON.
        if request.url.path.startswith(("/tableau", "/connexion", "/deconnexion")):
            return pages.TemplateResponse(
                request, "error.html", {"reason": str(exc.detail).rstrip(".")}, status_code=exc.status_code
            )
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        # The field and a French reason; never the value sent (a 100,000-item batch is not echoed back).
        errors = [
            {
                "loc": [p for p in err.get("loc", ()) if isinstance(p, str | int)],
                "msg": err["msg"] if str(err.get("type", "")).startswith("declic_") else french_reason(err),
                "type": str(err.get("type", "value_error")).removeprefix("declic_"),
            }
            for err in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE)

    @app.get("/healthz", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness and store reachability."""
        with declic.engine.connect() as conn:
            store_answers(conn)
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/tableau", status_code=303)

    return app


__all__ = ["create_app"]
