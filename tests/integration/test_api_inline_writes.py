"""A small partner batch is stored in the API's event loop when SQLite's writer is free, and never waits there for
it (`store_with_effects(wait=False)` says WriterBusy at once, with nothing written): a busy store sends the request
to a worker thread, which waits its turn as before, while the loop keeps answering. SQLite only (PostgreSQL
batches always go to a worker thread)."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time

import pytest
import requests
from sqlalchemy import func, select

from orchestrator.app import intake
from orchestrator.app.intake import WriterBusy, store_with_effects
from store.admin import add_partner
from store.db import BUSY_TIMEOUT_MS
from store.models import TriggerEvent
from tests.utils.factories import creation_item, siret
from triggers.model import BusinessFacts, EventIn

EVENTS = TriggerEvent.__table__
NOW = dt.datetime(2026, 12, 6, 10, 0, tzinfo=dt.UTC)
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _event(external_id: str) -> EventIn:
    number = siret()
    return EventIn(source="partner:test", external_id=external_id, type="creation", occurred_on=NOW.date(),
                   siret=number, siren=number[:9], business=BusinessFacts(siret=number, naf_code="10.71C",
                                                                          commune_code="35238"))


def _count(engine, external_id: str) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(EVENTS).where(EVENTS.c.external_id == external_id)
                            ).scalar()


def _store(engine, event: EventIn, wait: bool):
    return store_with_effects(engine, [event], partner_id=None, today=NOW.date(), now=NOW, wait=wait)


@sqlite_only
def test_a_store_written_by_another_connection_says_busy_at_once_and_keeps_nothing(engine):
    other = sqlite3.connect(engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing
    try:
        started = time.monotonic()
        with pytest.raises(WriterBusy):
            _store(engine, _event("busy-1"), wait=False)
        assert time.monotonic() - started < 5  # not the 30 s of SQLite's busy handler
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert _count(engine, "busy-1") == 0
    with engine.connect() as conn:  # the pooled connection waits again as store.db set it
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    assert [s.status for s in _store(engine, _event("busy-1"), wait=False)] == ["accepted"]
    assert _count(engine, "busy-1") == 1


@sqlite_only
def test_a_writer_thread_of_this_process_makes_a_call_that_would_not_wait_give_up(engine):
    with intake._SQLITE_WRITER:
        with pytest.raises(WriterBusy):
            _store(engine, _event("turn-1"), wait=False)
    assert _count(engine, "turn-1") == 0
    assert [s.status for s in _store(engine, _event("turn-1"), wait=True)] == ["accepted"]


@sqlite_only
def test_a_single_event_waits_in_a_worker_thread_while_the_store_is_busy_and_the_loop_keeps_answering(
        engine, live_server):
    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    other = sqlite3.connect(engine.url.database, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    released = threading.Timer(1.5, lambda: (other.execute("ROLLBACK"), other.close()))
    released.start()
    try:
        with requests.Session() as client:
            posting = threading.Thread(target=lambda: replies.append(client.post(
                f"{live_server}/api/v1/events", json={"events": [creation_item("wait-1")]},
                headers={"Authorization": f"Bearer {token}"}, timeout=30)))
            replies: list[requests.Response] = []
            posting.start()
            time.sleep(0.3)
            started = time.monotonic()
            assert requests.get(f"{live_server}/healthz", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0  # answered while the event still waits for the writer
            assert posting.is_alive()
            posting.join(30)
    finally:
        released.join()
    assert replies[0].status_code == 200 and replies[0].json()["accepted"] == 1
    assert _count(engine, "wait-1") == 1


@sqlite_only
def test_small_and_large_batches_get_the_same_answers(engine, live_server):
    token = add_partner(engine, "bge", ["creation"], now=dt.datetime.now(dt.UTC))
    headers = {"Authorization": f"Bearer {token}"}
    small = [creation_item(f"small-{i}") for i in range(3)]
    large = [creation_item(f"large-{i}") for i in range(60)]  # past INLINE_BODY_BYTES: a worker thread
    for items in (small, large):
        first = requests.post(f"{live_server}/api/v1/events", json={"events": items}, headers=headers, timeout=30)
        again = requests.post(f"{live_server}/api/v1/events", json={"events": items}, headers=headers, timeout=30)
        assert first.json()["accepted"] == len(items) and again.json()["duplicate"] == len(items)
