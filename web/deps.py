"""Dependencies shared by the routes: settings, engine, the calling partner."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from orchestrator.app.settings import Settings
from store.events import partner_for_token
from store.models import Partner

_bearer = HTTPBearer(auto_error=False)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def get_partner(
    engine: EngineDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Partner:
    """The active partner owning the bearer token, else 401 (a revoked partner's token included)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "jeton manquant : envoyez l'en-tête « Authorization: Bearer <jeton> »",
                            headers={"WWW-Authenticate": "Bearer"})
    partner = partner_for_token(engine, credentials.credentials)
    if partner is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            "jeton inconnu ou révoqué : demandez un nouveau jeton à l'opérateur Déclic",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return partner


PartnerDep = Annotated[Partner, Depends(get_partner)]
