"""The web app: partner API, owner-facing pages, health. Built from settings (one composition root)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.engine import Engine

from orchestrator.settings import Settings, get_settings
from store.db import get_engine
from web import api, public


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """A FastAPI app bound to one store."""
    settings = settings or get_settings()
    app = FastAPI(title="Déclic", version="0.1.0",
                  description="Partner events in, plain-French outreach to very small businesses out.")
    app.state.settings = settings
    app.state.engine = engine or get_engine(settings.resolved_database_url)
    app.include_router(api.router)
    app.include_router(public.router)
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")

    @app.get("/healthz", tags=["operations"])
    def health() -> dict[str, str]:
        """Liveness and store reachability."""
        with app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
