"""The partner event API: `POST /api/v1/events`, one status per item."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import uuid
from typing import Annotated, Any, Literal

import orjson
import requests
from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel

from orchestrator.app.collector import collector_paused
from orchestrator.app.intake import WriterBusy, accept_batch
from store.accounts import partner_events
from store.models import Partner
from store.partners import cached_partner
from triggers.partner_api import MAX_BATCH, EventBatch, EventItem
from web.deps import EngineDep, PartnerDep, _bearer, app_of, engine_of, get_partner
from web.prometheus import count_rejects

router = APIRouter(prefix="/api/v1", tags=["partner events"])
logger = logging.getLogger(__name__)
TRIGGER_RECEIVED = "declic.trigger.received"


MAX_ID = 2**31 - 1  # event ids are 32-bit integers (PostgreSQL INTEGER)
# A body this small (a dozen events) is stored in the event loop itself when SQLite's writer is free, never
# waiting for it (`answer_batch(wait=False)`): about a millisecond of work. Why: in a worker thread, the loop
# (reading the next requests) and the thread (whose every sqlite3 call lets go of the GIL) passed the GIL back and
# forth; single-event requests from 4 clients cost 1.4-1.9 ms of server CPU each that way, 0.9-1.0 ms inline.
INLINE_BODY_BYTES = 8 * 1024


class ErrorMessage(BaseModel):
    """An error in one French sentence."""

    detail: str


class FieldError(BaseModel):
    """One invalid field: where (`loc`), why (`msg`, in French), and a stable code (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """The request's invalid fields (the values sent are never echoed back)."""

    detail: list[FieldError]


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "jeton absent, inconnu ou révoqué"},
    413: {"model": ErrorMessage, "description": "corps de requête trop volumineux (DECLIC_MAX_BODY_BYTES)"},
    422: {"model": ValidationErrors, "description": "requête invalide (champ et raison, en français)"},
}


def invalid(loc: list[str | int], msg: str, kind: str) -> RequestValidationError:
    """A 422 naming the field, with a French reason (`kind` is the code; `declic_` marks our own)."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": f"declic_{kind}"}])


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
    # Accepted items about a person whose data were erased: kept without their contacts nor payload.
    withheld: int = 0
    # Payload fields not declared for their event type: dropped at intake, never refused (minimisation).
    dropped_fields: int = 0
    items: list[ItemStatus]


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` inlined (no recursion in these models), for `openapi_extra`."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline_refs(EventBatch.model_json_schema())}},
    }
}


# The answer's fallback encoder (`_encoded`): compact, UTF-8 as is, as orjson writes it.
_ANSWER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


# A run of 19 digits or more: a number that may not fit 64 bits, which orjson reads as a float. Found as 19 zeros
# in the body with every digit turned into "0" and every other byte into "x": one C pass, where a regular expression
# cost four times orjson's whole read.
_DIGITS_AS_ZEROS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x78 for b in range(256))
_LONG_NUMBER = b"0" * 19


def _decoded(body: bytes) -> Any:
    """The body's JSON value, as the json module reads it. Why orjson first: it reads a batch of 500 in half the
    time. A body with a long number goes to the json module (it keeps the integer exact), and so does what orjson
    refuses and the json module reads (NaN, escaped lone surrogates, a UTF-16 body or a byte-order mark); the json
    module also gives the verdict on what neither reads."""
    if _LONG_NUMBER in body.translate(_DIGITS_AS_ZEROS):
        return json.loads(body)
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def _encoded(answer: dict[str, Any]) -> bytes:
    """The answer's JSON as UTF-8 (orjson: a tenth of the json module's time for 500 statuses; a text it refuses,
    such as a lone surrogate, goes to the json module, which escapes it)."""
    try:
        return orjson.dumps(answer)
    except orjson.JSONEncodeError:
        return _ANSWER.encode(answer).encode("utf-8", "backslashreplace")


def parse_batch(body: bytes) -> list[Any]:
    """The raw items of a posted batch's body (read only once the token is checked; the body is capped by
    web.limits), or a 422 saying what is wrong. Items stay raw: each is validated on its own, so one bad item never
    fails the others."""
    try:
        data = _decoded(body)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, or nested beyond reason
        raise invalid(["body"], "le corps de la requête n'est pas un JSON lisible", "json_invalid") from None
    if not isinstance(data, dict) or "events" not in data:
        raise invalid(["body", "events"], "champ obligatoire absent : un objet {\"events\": [...]} est attendu",
                      "missing")
    events = data["events"]
    if not isinstance(events, list):
        raise invalid(["body", "events"], "une liste d'événements est attendue", "list_type")
    if not events:
        raise invalid(["body", "events"], "le lot est vide : envoyez au moins un événement", "too_short")
    if len(events) > MAX_BATCH:
        raise invalid(["body", "events"],
                      f"lot trop grand : {len(events)} événements, au plus {MAX_BATCH} par lot", "too_long")
    return events


def answer_batch(engine: Any, partner: Partner, body: bytes, secret: str | None, today: dt.date,
                 now: dt.datetime, *, wait: bool = True) -> tuple[dict[str, int], bytes]:
    """A posted batch from its body to its answer (the counts, and the answer's JSON as UTF-8): parsed, validated,
    stored and written out with the cyclic collector paused. Without `wait`, WriterBusy when SQLite's writer is
    taken (`orchestrator.app.intake.store_with_effects`).

    Why the whole of it: a batch's items and statuses are thousands of dicts living until the answer is written; with
    the collector on while they lived, its collections scanned them and pushed them towards the oldest generation,
    and a full collection of the server's ~190,000 objects followed every few dozen batches. Nothing of the batch
    outlives the pause (the work is done in `_answer`, whose objects go when it returns), so resuming finds nothing
    of it to scan."""
    with collector_paused():
        return _answer(engine, partner, body, secret, today, now, wait)


def _answer(engine: Any, partner: Partner, body: bytes, secret: str | None, today: dt.date,
            now: dt.datetime, wait: bool) -> tuple[dict[str, int], bytes]:
    counts, items = accept_batch(engine, partner, parse_batch(body), secret, today, now, wait=wait)
    if counts["rejected"]:
        count_rejects(partner.name, items)
    # The answer (schema `BatchResult`) written out as it stands: FastAPI would build and validate a model per
    # item's status before writing it.
    return counts, _encoded({**counts, "items": items})


async def current_partner(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Partner:
    """`web.deps.get_partner` without a trip to a worker thread when the token was seen within the last seconds
    (no database access then): a single-event request otherwise paid several thread hand-offs."""
    engine = engine_of(request)
    if credentials is not None and cached_partner(credentials.credentials) is not None:
        return get_partner(engine, credentials)
    return await run_in_threadpool(get_partner, engine, credentials)


@router.post("/events", response_model=BatchResult, responses=ERRORS, openapi_extra=BATCH_BODY)
async def post_events(request: Request, partner: Annotated[Partner, Depends(current_partner)],
                      background: BackgroundTasks) -> Response:
    """Submit 1 to 1,000 events. The token is checked before the body is read; each item is validated on
    its own (schema: `EventItem`) and gets its status; accepted items are committed before the answer;
    the same `external_id` twice is stored once."""
    body = await request.body()
    declic = app_of(request)
    now = declic.now()  # one reading: the batch's moment and its local day
    work = (declic.engine, partner, body, declic.settings.resolved_secret, now.astimezone(declic.zone).date(), now)
    answered = None
    if len(body) <= INLINE_BODY_BYTES and declic.engine.dialect.name == "sqlite":
        with contextlib.suppress(WriterBusy):  # nothing written: the worker thread waits for the writer instead
            answered = answer_batch(*work, wait=False)
    counts, answer = answered or await run_in_threadpool(answer_batch, *work)
    reply = Response(answer, media_type="application/json", background=background)
    if counts["accepted"] and os.environ.get("PREFECT_API_URL"):
        # After the answer, in a worker thread: a slow or unreachable Prefect API never delays a partner.
        background.add_task(announce_batch, partner, BatchResult.model_construct(**counts, items=[]), declic.now())
    return reply


def announce_batch(partner, result: BatchResult, occurred: dt.datetime) -> None:
    """Emit one Prefect event `declic.trigger.received` for a committed batch (it starts the plan deployment),
    `occurred` when the batch was committed (the App's clock).

    Best effort: the events are already stored, and the scheduled planning run picks them up anyway, so an
    unreachable Prefect API is logged, never turned into an error for the partner. Without a Prefect API
    (the embedded default runs flows in-process) there is nobody to tell, and nothing is emitted.
    """
    api_url = os.environ.get("PREFECT_API_URL")
    if not api_url:
        return
    # A plain POST to the events endpoint of the Prefect API, rather than prefect.events.emit_event: that one
    # goes through a process-wide events worker whose client is fixed by whichever settings first created it,
    # and a web process has no flow-run context to give it the right ones.
    event = {
        "id": str(uuid.uuid4()),
        "occurred": occurred.isoformat(),
        "event": TRIGGER_RECEIVED,
        "resource": {"prefect.resource.id": f"declic.partner.{partner.id}", "prefect.resource.name": partner.name},
        "related": [],
        "payload": {"accepted": result.accepted, "duplicate": result.duplicate, "rejected": result.rejected},
    }
    try:
        reply = requests.post(f"{api_url.rstrip('/')}/events", json=[event], timeout=5)
        reply.raise_for_status()
    except requests.RequestException:  # the partner's batch is committed: never fail its request for this
        logger.exception("could not emit %s for partner %s (batch committed, scheduled planning will run)",
                         TRIGGER_RECEIVED, partner.name)


class SubmittedEvent(BaseModel):
    """One event the calling partner submitted, and where it stands."""

    id: int
    external_id: str
    type: str
    siret: str | None
    occurred_on: str
    status: str  # accepted | pending (business unknown yet)
    planned: bool
    received_at: str


@router.get("/events", response_model=list[SubmittedEvent], responses=ERRORS)
async def list_events(partner: PartnerDep, engine: EngineDep, since: dt.datetime | dt.date | None = None,
                      after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
                      limit: int = 100) -> list[SubmittedEvent]:
    """The calling partner's own submissions (never another partner's) received since `since` (a date, or
    an ISO date-time; UTC when no offset is given), oldest first; page with `after` (the last id seen)."""
    if isinstance(since, dt.datetime):
        since = since if since.tzinfo else since.replace(tzinfo=dt.UTC)
    elif isinstance(since, dt.date):
        since = dt.datetime.combine(since, dt.time(0), dt.UTC)
    if since is not None:
        try:  # 9999-12-31T23:59:59-23:59 is a valid ISO date-time whose UTC time is past year 9999
            since = since.astimezone(dt.UTC)
        except OverflowError:
            raise invalid(["query", "since"], "date hors limites (entre l'an 1 et l'an 9999 en UTC)",
                          "date_out_of_range") from None

    def read() -> list[SubmittedEvent]:
        with engine.connect() as conn:
            rows = partner_events(conn, partner.id, after_id=after, since=since, limit=max(1, min(limit, 1000)))
        return [SubmittedEvent(id=r.id, external_id=r.external_id, type=r.type, siret=r.siret,
                               occurred_on=r.occurred_on.isoformat(), status=r.status, planned=r.planned,
                               received_at=r.received_at.isoformat()) for r in rows]

    return await run_in_threadpool(read)


# Name the item fields in the operation's description too (the body schema holds them in full).
post_events.__doc__ = (post_events.__doc__ or "") + "\n\nItem fields: " + ", ".join(EventItem.model_fields)
