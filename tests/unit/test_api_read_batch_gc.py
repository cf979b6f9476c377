"""The API parses a batch with the cyclic collector paused (as `accept_batch` validates and stores it): the items are
thousands of dicts that live until the answer, and collections while they were built pushed them towards the oldest
generation. The collector is back as it was afterwards, also when the body is refused."""

from __future__ import annotations

import asyncio
import gc
import json

import pytest
from fastapi.exceptions import RequestValidationError

import web.api as api


class Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    async def body(self) -> bytes:
        return self._body


def test_the_batch_is_parsed_with_the_collector_paused_and_it_resumes(monkeypatch):
    seen = []
    loads = json.loads
    monkeypatch.setattr(api.json, "loads", lambda text: seen.append(gc.isenabled()) or loads(text))
    assert gc.isenabled()
    events = asyncio.run(api.read_batch(Body(b'{"events": [{"external_id": "a"}]}')))
    assert events == [{"external_id": "a"}] and seen == [False] and gc.isenabled()
    with pytest.raises(RequestValidationError):
        asyncio.run(api.read_batch(Body(b'{"events": [')))
    assert seen == [False, False] and gc.isenabled()
