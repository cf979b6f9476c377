"""The fence settles an accepted handoff with the peer's id (issue 18): `record_results` then has nothing left to
write for it, and the row and its history end as they did when `record_results` confirmed it. SQLite and
PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from bench.bench_email import seed_outbox
from orchestrator.core.outcomes import Outcome, SendResult
from store.models import Message, MessageEvent
from store.outbox import Fence, claim_due, record_results

MESSAGES, EVENTS = Message.__table__, MessageEvent.__table__
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)


def test_a_settled_handoff_keeps_the_peers_id_and_is_recorded_once(engine):
    seed_outbox(engine, 3, now=NOW)
    with engine.begin() as conn:
        first, second, third = claim_due(conn, NOW, 10, "me:1:a", dt.timedelta(minutes=5))
    answers = [SendResult(first.id, Outcome.SENT, "250 2.0.0 Ok: queued as A1", provider_id="queued as A1"),
               SendResult(second.id, Outcome.SENT, "250 2.0.0 Ok", provider_id=""),
               SendResult(third.id, Outcome.SENT, "250 2.0.0 Ok: queued as C3", provider_id="queued as C3")]
    fence = Fence(engine, "me:1:a", lambda: NOW)
    try:
        for result in answers[:2]:  # each answer is settled with the next handoff's commit
            assert fence(result.message_id, f"<declic.{result.message_id}@127.0.0.1>")
            fence.answered(result)
        assert fence(third.id, f"<declic.{third.id}@127.0.0.1>")
    finally:
        fence.close()
    assert fence.settled == {first.id, second.id}
    with engine.connect() as conn:  # settled at the fence with the peer's id, before any record
        assert conn.execute(select(MESSAGES.c.status, MESSAGES.c.provider_id).where(MESSAGES.c.id == first.id)
                            ).one() == ("sent", "queued as A1")
    with engine.begin() as conn:
        counts = record_results(conn, answers, "me:1:a", NOW, fence.handed_over, settled=fence.settled)
    assert counts["sent"] == 3
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(MESSAGES).where(
            MESSAGES.c.id.in_([first.id, second.id, third.id])))}
        history = [(e.message_id, e.status, e.detail) for e in conn.execute(
            select(EVENTS).where(EVENTS.c.status == "sent").order_by(EVENTS.c.message_id))]
    assert {i: (r.status, r.provider_id, r.last_error) for i, r in rows.items()} == {
        first.id: ("sent", "queued as A1", None), second.id: ("sent", None, None),
        third.id: ("sent", "queued as C3", None)}
    assert history == [(first.id, "sent", "250 2.0.0 Ok: queued as A1"), (second.id, "sent", "250 2.0.0 Ok"),
                       (third.id, "sent", "250 2.0.0 Ok: queued as C3")]
