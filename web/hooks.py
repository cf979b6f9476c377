"""Callbacks from the outside world: SMS replies (STOP) and delivery receipts, bounce reports.

Providers call `/hooks/...?token=<DECLIC_HOOKS_TOKEN>`; without that setting the hooks are off (404). Each
hook parses with the channel's own reader and records through `orchestrator.app.feedback`: a STOP or a hard
bounce becomes a global, permanent opt-out.
"""

from __future__ import annotations

import hmac
import json
from functools import partial
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from integrations.email_bounce import parse_dsn
from integrations.sms_http import parse_delivery, parse_inbound
from orchestrator.app import feedback
from web.deps import AppDep

router = APIRouter(prefix="/hooks", tags=["provider callbacks"])


class HookError(BaseModel):
    """Why the callback was refused, in one French sentence."""

    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": HookError, "description": "corps illisible (la raison nomme l'entrée et le champ)"},
    403: {"model": HookError, "description": "jeton faux"},
    404: {"model": HookError, "description": "rappels non configurés (DECLIC_HOOKS_TOKEN)"},
    413: {"model": HookError, "description": "corps trop volumineux (DECLIC_MAX_BODY_BYTES)"},
}


def _check(settings, token: str | None) -> None:
    expected = settings.hooks_token.get_secret_value() if settings.hooks_token else None
    if not expected:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "rappels non configurés (DECLIC_HOOKS_TOKEN absent)")
    # Compared as bytes: compare_digest refuses non-ASCII text (?token=%C3%A9 must be a 403, not a 500).
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "jeton de rappel faux")


async def _json(request: Request):
    body = await request.body()
    try:
        return json.loads(body or b"null")
    except (ValueError, RecursionError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "le corps de la requête n'est pas un JSON lisible") from None


def _parse(parser, payload):
    try:
        return parser(payload)
    except ValueError as exc:  # the readers name the entry and the field in French
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc


@router.post("/sms/replies", responses=ERRORS)
async def sms_replies(request: Request, declic: AppDep, token: str | None = None):
    """Replies to our SMS (generic or Octopush format); a STOP is recorded as an opt-out of that number."""
    _check(declic.settings, token)
    replies = _parse(partial(parse_inbound, zone=declic.zone), await _json(request))
    return await run_in_threadpool(feedback.sms_replies, declic, replies)


@router.post("/sms/receipts", responses=ERRORS)
async def sms_receipts(request: Request, declic: AppDep, token: str | None = None):
    """Delivery receipts: the message history says delivered or undelivered."""
    _check(declic.settings, token)
    receipts = _parse(partial(parse_delivery, zone=declic.zone), await _json(request))
    return await run_in_threadpool(feedback.sms_receipts, declic, receipts)


@router.post("/email/bounces", responses=ERRORS)
async def email_bounces(request: Request, declic: AppDep, token: str | None = None):
    """A delivery status notification (RFC 3464) as the raw e-mail: hard bounces become opt-outs."""
    _check(declic.settings, token)
    bounces = _parse(parse_dsn, await request.body())
    return await run_in_threadpool(feedback.bounces, declic, bounces)
