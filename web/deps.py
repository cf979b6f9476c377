"""Dependencies shared by the routes: the App (settings, engine, clock, zone), a unit of work, the calling partner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine

from orchestrator.app.bootstrap import App, Unit
from orchestrator.app.settings import Settings
from store.models import Partner
from store.partners import partner_for_token

_bearer = HTTPBearer(auto_error=False)


def app_of(request: Request) -> App:
    """The App the web app was built with (`web.app.create_app`)."""
    return request.app.state.app


def settings_of(request: Request) -> Settings:
    return app_of(request).settings


def engine_of(request: Request) -> Engine:
    """The store, for routes that only read what they show (every write goes through an app service)."""
    return app_of(request).engine


def unit_of_work(request: Request) -> Iterator[Unit]:
    """A transaction of the App for the route (committed when the route returns, before the answer leaves)."""
    with app_of(request).transaction() as unit:
        yield unit


AppDep = Annotated[App, Depends(app_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
EngineDep = Annotated[Engine, Depends(engine_of)]
# scope="function": the transaction ends with the route, so nothing is answered before it is committed.
UnitDep = Annotated[Unit, Depends(unit_of_work, scope="function")]


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
