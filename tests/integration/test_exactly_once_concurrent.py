"""Two dispatchers at once on the same outbox: each message is claimed by one of them and reaches the SMTP
server (its own process) exactly once. PostgreSQL claims with FOR UPDATE SKIP LOCKED; SQLite serialises
its writers, and the same code must hold there too."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter

from sqlalchemy import select

from bench.bench_email import seed_outbox
from store.models import Message, MessageEvent
from tests.e2e.test_dispatch_kill import dispatcher, received, runner_env, start_sink

MESSAGES = Message.__table__
EVENTS = MessageEvent.__table__
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
TOTAL = 3_000


def test_two_dispatchers_at_once_never_send_a_message_twice(db_url, engine, tmp_path):
    seed_outbox(engine, TOTAL, now=NOW)
    log = tmp_path / "received.log"
    log.touch()
    sink, port = start_sink(log)
    env = {**runner_env(db_url, tmp_path, port), "DECLIC_LEASE_SECONDS": "300",
           "DECLIC_DISPATCH_BATCH_SIZE": "100"}
    try:
        go = tmp_path / "go"
        runners = [dispatcher(env, NOW, "--wait-for", str(go)) for _ in range(2)]
        for runner in runners:  # both set up (imports, settings) before either claims anything
            assert runner.stdout.readline().strip() == "ready", runner.stderr.read()[-2000:]
        go.touch()
        outputs = [r.communicate(timeout=600) for r in runners]
        time.sleep(0.5)  # the sink writes its log line right after answering
    finally:
        sink.terminate()
        sink.wait(10)
    for runner, (_, err) in zip(runners, outputs, strict=True):
        assert runner.returncode == 0, err[-2000:]
    counts = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert all(c.get("sent", 0) > 0 for c in counts), counts  # both took part
    assert sum(c["sent"] for c in counts) == TOTAL

    got = received(log)
    assert len(got) == TOTAL and set(got.values()) == {1}
    with engine.connect() as conn:
        sent = conn.execute(select(MESSAGES.c.rfc_message_id)
                            .where(MESSAGES.c.status == "sent")).scalars().all()
        claims = conn.execute(select(EVENTS.c.message_id, EVENTS.c.detail)
                              .where(EVENTS.c.status == "claimed")).all()
    assert set(sent) == set(got)
    assert Counter(c.message_id for c in claims).most_common(1)[0][1] == 1  # claimed once each
    assert len({c.detail for c in claims}) == 2  # by two lease owners
