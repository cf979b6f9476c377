"""The API takes a batch from its body to its answer with the cyclic collector paused (`web.api.answer_batch`): the
items and statuses are thousands of dicts that live until the answer is written, and collections while they lived
pushed them towards the oldest generation. The collector is back as it was afterwards, also when the body is
refused. The body is read (orjson first) into exactly what the json module reads, and the answer written as its
compact text."""

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
    decoded = api._decoded

    def accept(engine, partner, raw_items, secret, today, now, wait=True):
        seen.append(gc.isenabled())
        statuses = [{"index": 0, "external_id": "a", "status": "rejected", "field": "siret", "reason": "absent"}]
        return {"accepted": 0, "duplicate": 0, "rejected": 1, "withheld": 0, "dropped_fields": 0}, statuses

    monkeypatch.setattr(api, "_decoded", lambda body: seen.append(gc.isenabled()) or decoded(body))
    monkeypatch.setattr(api, "accept_batch", accept)
    assert gc.isenabled()
    counts, answer = api.answer_batch(None, Partner(), b'{"events": [{"external_id": "a"}]}', None, NOW.date(), NOW)
    assert seen == [False, False] and gc.isenabled()
    assert counts["rejected"] == 1 and json.loads(answer)["items"][0]["field"] == "siret"
    with pytest.raises(RequestValidationError):
        api.answer_batch(None, Partner(), b'{"events": [', None, NOW.date(), NOW)
    assert seen == [False, False, False] and gc.isenabled()


@pytest.mark.parametrize("body", [
    b'{"events": [{"n": NaN}]}',  # the json module reads NaN, orjson does not
    b'{"events": [{"n": 123456789012345678901234567890}]}',  # an integer past 64 bits (orjson: a float)
    b'{"events": [{"n": -9223372036854775809, "m": 18446744073709551616}]}',
    b'{"events": [{"s": "\\ud800"}]}',  # an escaped lone surrogate
    "\ufeff{\"events\": [{\"s\": \"\u00e9\"}]}".encode("utf-8"),  # a byte-order mark
    '{"events": [{"s": "é"}]}'.encode("utf-16"),  # a UTF-16 body
    b'{"events": [{"a": 1, "a": 2}]}',  # a key twice: the last one
    b'{"events": [1.5e400, -0.0, "caf\\u00e9", {"x": [true, false, null]}]}',
])
def test_a_body_reads_as_the_json_module_reads_it(body):
    assert api._decoded(body) == json.loads(body)
    assert repr(api._decoded(body)) == repr(json.loads(body))  # the same types, NaN and -0.0 included


@pytest.mark.parametrize("body", [b'{"events": [', b"\xff\xfe\x00", b'{"events": [1,]}', b"[" * 100_000])
def test_a_body_neither_reads_is_refused_with_the_usual_422(body):
    with pytest.raises(RequestValidationError):
        api.parse_batch(body)


def test_the_answer_is_the_json_modules_compact_text():
    answer = {"accepted": 1, "items": [{"index": 0, "external_id": "dé-1", "status": "accepted", "field": None,
                                        "reason": None}]}
    assert api._encoded(answer) == api._ANSWER.encode(answer).encode()
    lone = {"items": [{"external_id": "a\ud800"}]}  # never accepted as such, but never a 500 either
    assert json.loads(api._encoded(lone)) == lone
