"""Scale-out, for real: a Prefect server on PostgreSQL (Redis broker), a process work pool, two workers,
the store on PostgreSQL; 5,000 e-mails dispatched by two flow runs at once on the two workers, counted at a
real SMTP server.
"""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from sqlalchemy import func, select

from integrations.smtp_sink import SmtpSink
from orchestrator.bootstrap import bootstrap
from orchestrator.settings import Settings
from scripts.scale_out import Cluster, _alive, drop_database, free_port
from scripts.seed import seed_due_emails
from store.models import Message, MessageEvent
from tests.conftest import TEST_SECRET

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MESSAGES = 5_000
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def start_run(api: str, deployment: str, parameters: dict) -> str:
    dep = requests.get(f"{api}/deployments/name/{deployment}", timeout=10)
    dep.raise_for_status()
    reply = requests.post(f"{api}/deployments/{dep.json()['id']}/create_flow_run",
                          json={"parameters": parameters}, timeout=10)
    reply.raise_for_status()
    return reply.json()["id"]


def wait_runs(api: str, run_ids: list[str], timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json() for run_id in run_ids]
        if all(r["state_type"] in TERMINAL for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(1)


def test_two_workers_deliver_5000_messages_exactly_once(tmp_path):
    suffix = uuid.uuid4().hex[:8]
    sink = SmtpSink().start()
    cluster = Cluster(
        workdir=tmp_path, prefect_db=f"t_prefect_{suffix}", store_db=f"t_store_{suffix}", workers=2,
        broker="redis", api_port=free_port(),
        env_extra={"DECLIC_SMTP_HOST": "127.0.0.1", "DECLIC_SMTP_PORT": str(sink.port),
                   "DECLIC_SECRET_KEY": TEST_SECRET, "DECLIC_BASE_URL": "http://127.0.0.1:8000",
                   "DECLIC_DISPATCH_BATCH_SIZE": "250"},
    )
    pids: list[int] = []
    try:
        cluster.up()
        pids = [cluster.server.pid, *(p.pid for p in cluster.worker_procs)]
        app = bootstrap(Settings(home=tmp_path / "home", database_url=cluster.store_url,
                                 secret_key=TEST_SECRET, smtp_port=sink.port))
        clock = seed_due_emails(app, MESSAGES)

        # Two dispatch runs at once: each worker takes one (--limit 1) and both claim from the same outbox.
        params = {"now": clock.isoformat()}
        run_ids = [start_run(cluster.api_url, "dispatch/dispatch", params) for _ in range(2)]
        runs = wait_runs(cluster.api_url, run_ids, timeout=600)

        assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], [r["state"] for r in runs]
        assert sink.received == MESSAGES
        assert sink.duplicates() == {}
        with app.engine.connect() as conn:
            by_status = dict(conn.execute(select(Message.status, func.count())
                                          .group_by(Message.status)).all())
            owners = conn.execute(select(MessageEvent.detail, func.count())
                                  .where(MessageEvent.status == "claimed")
                                  .group_by(MessageEvent.detail)).all()
        assert by_status.get("sent") == MESSAGES
        assert by_status.get("planned", 0) == 0 and by_status.get("claimed", 0) == 0
        # Both workers sent part of the load (two distinct processes held leases).
        assert len(owners) == 2 and all(count >= 250 for _, count in owners), owners
        started = sorted(r["start_time"] for r in runs)
        ended = sorted(r["end_time"] for r in runs)
        assert started[1] < ended[0], "the two runs did not overlap"
        app.close()
    finally:
        cluster.down()
        sink.stop()
        from store.db import dispose_engines

        dispose_engines()
        drop_database(cluster.prefect_db)
        drop_database(cluster.store_db)
    assert pids and not any(_alive(pid) for pid in pids), "a process started by the test is still running"
