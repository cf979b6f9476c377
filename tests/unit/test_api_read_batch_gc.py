"""The API takes a batch from its body to its answer with the cyclic collector paused (`web.api.answer_batch`): the
items and statuses are thousands of dicts that live until the answer is written, and collections while they lived
pushed them towards the oldest generation. The collector is back as it was afterwards, also when the body is
refused."""

from __future__ import annotations

import datetime as dt
import gc
import json

import pytest
from fastapi.exceptions import RequestValidationError

import web.api as api

NOW = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)


class Partner:
    id, name = 7, "bge"


def test_the_batch_goes_from_body_to_answer_with_the_collector_paused(monkeypatch):
    seen = []
    loads = json.loads

    def accept(engine, partner, raw_items, secret, today, now):
        seen.append(gc.isenabled())
        statuses = [{"index": 0, "external_id": "a", "status": "rejected", "field": "siret", "reason": "absent"}]
        return {"accepted": 0, "duplicate": 0, "rejected": 1, "withheld": 0, "dropped_fields": 0}, statuses

    monkeypatch.setattr(api.json, "loads", lambda text: seen.append(gc.isenabled()) or loads(text))
    monkeypatch.setattr(api, "accept_batch", accept)
    assert gc.isenabled()
    counts, answer = api.answer_batch(None, Partner(), b'{"events": [{"external_id": "a"}]}', None, NOW.date(), NOW)
    assert seen == [False, False] and gc.isenabled()
    assert counts["rejected"] == 1 and loads(answer)["items"][0]["field"] == "siret"
    with pytest.raises(RequestValidationError):
        api.answer_batch(None, Partner(), b'{"events": [', None, NOW.date(), NOW)
    assert seen == [False, False, False] and gc.isenabled()
