"""The bare baseline of the partner API benchmark: a FastAPI app that parses the same JSON with pydantic models of
the same shape and answers one status per item, with no store, no field checks beyond pydantic's types, no token.

    uvicorn bench.bare_api:app --port 8001

What `python -m bench api` measures beside Déclic, in the same run: the ratio says how much of what the
framework alone can do Déclic keeps while validating and storing every event.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field


class BareBusiness(BaseModel):
    name: str | None = None
    naf_code: str | None = None
    commune_code: str | None = None
    tranche_effectifs: str | None = None
    creation_date: dt.date | None = None


class BareContact(BaseModel):
    email: str | None = None
    phone: str | None = None
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    consent: bool = False


class BareItem(BaseModel):
    external_id: str
    type: str
    siret: str
    occurred_on: dt.date
    business: BareBusiness | None = None
    contact: BareContact | None = None
    payload: dict[str, Any] | None = None


class BareBatch(BaseModel):
    events: list[BareItem] = Field(min_length=1, max_length=1000)


class BareStatus(BaseModel):
    index: int
    external_id: str | None
    status: Literal["accepted", "pending", "duplicate", "rejected"]
    field: str | None = None
    reason: str | None = None


class BareResult(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    withheld: int = 0
    items: list[BareStatus]


app = FastAPI()


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/v1/events", response_model=BareResult)
def post_events(batch: BareBatch) -> BareResult:
    items = [BareStatus(index=i, external_id=e.external_id, status="accepted") for i, e in enumerate(batch.events)]
    return BareResult(accepted=len(items), duplicate=0, rejected=0, items=items)
