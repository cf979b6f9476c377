"""The partner event API: `POST /api/v1/events`, one status per item."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from store.conversions import attribute_conversions
from store.events import store_events
from triggers.model import CONVERSION_TYPES, EventIn, Reject
from triggers.partner_api import EventBatch, EventItem, validate_item
from web.deps import EngineDep, PartnerDep

router = APIRouter(prefix="/api/v1", tags=["partner events"])


class ItemStatus(BaseModel):
    """What happened to one submitted event."""

    index: int
    external_id: str | None
    status: Literal["accepted", "pending", "duplicate", "rejected"]
    field: str | None = None
    reason: str | None = None


class BatchResult(BaseModel):
    """Counts and one status per item, in submission order."""

    accepted: int
    duplicate: int
    rejected: int
    items: list[ItemStatus]


def scope_reject(partner, item: EventIn) -> Reject | None:
    """Refuse an event whose type the partner's token does not allow."""
    if partner.allowed_types and item.type not in partner.allowed_types:
        return Reject(None, "type", f"type non autorisé pour ce partenaire: {item.type}")
    return None


def accept_batch(engine, partner, raw_items: list[dict[str, Any]]) -> BatchResult:
    """Validate each item, store the valid ones (committed before returning), report each."""
    statuses: list[ItemStatus | None] = [None] * len(raw_items)
    valid: list[tuple[int, EventIn]] = []
    for i, raw in enumerate(raw_items):
        ext = raw.get("external_id") if isinstance(raw, dict) else None
        result = validate_item(raw, f"partner:{partner.id}", partner.name)
        if isinstance(result, EventIn):
            result = scope_reject(partner, result) or result
        if isinstance(result, Reject):
            statuses[i] = ItemStatus(index=i, external_id=ext, status="rejected", field=result.field,
                                     reason=result.reason)
        else:
            valid.append((i, result))
    stored = store_events(engine, [e for _, e in valid], partner_id=partner.id)
    conversions = [f.event_id for (_, e), f in zip(valid, stored, strict=True)
                   if f.event_id and e.type in CONVERSION_TYPES]
    if conversions:  # attributed to the business's latest enrollment (treatment or holdout) for the metrics
        with engine.begin() as conn:
            attribute_conversions(conn, conversions)
    for (i, event), fate in zip(valid, stored, strict=True):
        statuses[i] = ItemStatus(index=i, external_id=event.external_id, status=fate.status)
    items = [s for s in statuses if s is not None]
    return BatchResult(
        accepted=sum(s.status in ("accepted", "pending") for s in items),
        duplicate=sum(s.status == "duplicate" for s in items),
        rejected=sum(s.status == "rejected" for s in items),
        items=items,
    )


@router.post("/events", response_model=BatchResult, responses={401: {"description": "missing or bad token"}})
async def post_events(batch: EventBatch, partner: PartnerDep, engine: EngineDep) -> BatchResult:
    """Submit 1 to 1,000 events. Each item is validated on its own (schema: `EventItem`); accepted
    items are committed before the answer; the same `external_id` twice is stored once."""
    return await run_in_threadpool(accept_batch, engine, partner, batch.events)


# Publish the item schema in the OpenAPI document (items are validated one by one, see EventBatch).
post_events.__doc__ = (post_events.__doc__ or "") + "\n\nItem fields: " + ", ".join(EventItem.model_fields)
