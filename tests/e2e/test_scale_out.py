"""Scale-out, for real: a Prefect server on PostgreSQL (Redis broker), a process work pool, two workers,
the store on PostgreSQL; 5,000 e-mails dispatched by two flow runs at once on the two workers, counted at a
real SMTP server; a partner batch posted to the web app starts the plan deployment through its event trigger;
a dispatch deployment failing twice fires the operators' automation, whose e-mail leaves through the outbox.

The cluster has its own Prefect database, store and Redis database (claimed by `Cluster.up`), so another
cluster on the same machine (another test run, a benchmark) never takes its events. Waits follow progress:
they fail when nothing has moved for STALL seconds, however loaded the machine is.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
import requests
from sqlalchemy import func, select

from integrations.smtp_sink import SmtpSink
from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.settings import Settings
from orchestrator.core.campaign_spec import load_spec
from scripts.scale_out import (
    Cluster,
    _alive,
    claim_redis_database,
    drop_database,
    free_port,
    release_redis_database,
)
from scripts.seed import seed_due_emails
from store.admin import add_partner, apply_campaign
from store.models import Message, MessageEvent, Notice, TriggerEvent
from tests.conftest import TEST_SECRET
from tests.utils.factories import campaign_spec, creation_item
from tests.utils.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MESSAGES = 5_000
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
STALL = 180  # seconds without any visible progress before a wait fails (a loaded machine is slow, not stuck)
OPERATORS = ("ops@declic.example", "astreinte@declic.example")


@pytest.fixture(scope="module")
def sink():
    with SmtpSink() as running:
        yield running


@pytest.fixture(scope="module")
def cluster(sink, tmp_path_factory):
    """Server, pool, deployments and two workers for this module; every process stopped at the end."""
    suffix = uuid.uuid4().hex[:8]
    running = Cluster(
        workdir=tmp_path_factory.mktemp("cluster"), prefect_db=f"t_prefect_{suffix}",
        store_db=f"t_store_{suffix}", workers=2, broker="redis", api_port=free_port(), schedules=False,
        env_extra={"DECLIC_SMTP_HOST": "127.0.0.1", "DECLIC_SMTP_PORT": str(sink.port),
                   "DECLIC_SECRET_KEY": TEST_SECRET, "DECLIC_BASE_URL": "http://127.0.0.1:8000",
                   "DECLIC_DISPATCH_BATCH_SIZE": "250", "DECLIC_OPERATOR_EMAILS": ",".join(OPERATORS)},
    )  # fmt: skip
    pids: list[int] = []
    try:
        running.up()
        pids = [running.server.pid, *(p.pid for p in running.children)]
        assert running.redis_url and not running.redis_url.endswith("/0")  # its own Redis database
        yield running
    finally:
        running.down()
        from store.db import dispose_engines

        dispose_engines()
        drop_database(running.prefect_db)
        drop_database(running.store_db)
    assert pids and not any(_alive(pid) for pid in pids), "a process started by the test is still running"


@pytest.fixture(scope="module")
def app(cluster, sink, tmp_path_factory):
    settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=cluster.store_url,
                        secret_key=TEST_SECRET, smtp_port=sink.port)  # fmt: skip
    built = bootstrap(settings)
    yield built
    built.close()


def start_run(api: str, deployment: str, parameters: dict) -> str:
    dep = requests.get(f"{api}/deployments/name/{deployment}", timeout=10)
    dep.raise_for_status()
    reply = requests.post(f"{api}/deployments/{dep.json()['id']}/create_flow_run",
                          json={"parameters": parameters}, timeout=10)  # fmt: skip
    reply.raise_for_status()
    return reply.json()["id"]


def wait_runs(api: str, run_ids: list[str], sink: SmtpSink) -> list[dict]:
    """Until every run has ended; progress is the runs' states and the messages the sink has received."""
    runs: list[dict] = []

    def probe() -> tuple:
        runs[:] = [requests.get(f"{api}/flow_runs/{run_id}", timeout=10).json() for run_id in run_ids]
        return tuple(r["state_name"] for r in runs), sink.received

    wait_until(probe, lambda seen: all(r["state_type"] in TERMINAL for r in runs), stall=STALL, interval=1,
               what="dispatch runs (states, messages received)")
    return runs


def _count_events(api: str, names: list[str] | None = None, prefix: list[str] | None = None) -> int:
    event = {"name": names} if names else {"prefix": prefix}
    reply = requests.post(f"{api}/events/filter", json={"filter": {"event": event}, "limit": 1}, timeout=10)
    return reply.json()["total"] if reply.ok else -1


def test_two_clusters_never_share_a_redis_database():
    # The server's consumer groups have fixed names: two servers on one Redis database split each other's
    # events. Each cluster claims its own database; a claim left by a process that is gone is taken over.
    first, second = claim_redis_database(), claim_redis_database()
    try:
        assert first[0] != second[0]
        assert not first[0].endswith("/0") and not second[0].endswith("/0")
    finally:
        assert release_redis_database(*first) and release_redis_database(*second)
    assert not release_redis_database(*first)  # released once: no longer ours


def test_two_workers_deliver_5000_messages_exactly_once(cluster, app, sink):
    clock = seed_due_emails(app, MESSAGES)
    before = sink.received

    # Two dispatch runs at once: each worker takes one (--limit 1) and both claim from the same outbox.
    params = {"now": clock.isoformat()}
    run_ids = [start_run(cluster.api_url, "dispatch/dispatch", params) for _ in range(2)]
    runs = wait_runs(cluster.api_url, run_ids, sink)

    assert [r["state_type"] for r in runs] == ["COMPLETED", "COMPLETED"], [r["state"] for r in runs]
    assert sink.received - before == MESSAGES
    assert sink.duplicates() == {}
    with app.engine.connect() as conn:
        by_status = dict(conn.execute(select(Message.status, func.count()).group_by(Message.status)).all())
        owners = conn.execute(select(MessageEvent.detail, func.count())
                              .where(MessageEvent.status == "claimed")
                              .group_by(MessageEvent.detail)).all()  # fmt: skip
    assert by_status.get("sent") == MESSAGES
    assert by_status.get("planned", 0) == 0 and by_status.get("claimed", 0) == 0
    # Both workers sent part of the load (two distinct processes held leases).
    assert len(owners) == 2 and all(count >= 250 for _, count in owners), owners
    started = sorted(r["start_time"] for r in runs)
    ended = sorted(r["end_time"] for r in runs)
    assert started[1] < ended[0], "the two runs did not overlap"


def test_a_partner_batch_starts_the_plan_deployment(cluster, app, monkeypatch):
    import uvicorn

    from web.app import create_app

    # The web app emits `declic.trigger.received` to the cluster's Prefect API after committing the batch.
    monkeypatch.setenv("PREFECT_API_URL", cluster.api_url)
    apply_campaign(app.engine, load_spec(campaign_spec(name="declenche-35")), now=dt.datetime.now(dt.UTC))
    token = add_partner(app.engine, "bge-e2e", ["creation"], now=dt.datetime.now(dt.UTC))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(app), host="127.0.0.1", port=port,
                                           log_level="warning"))  # fmt: skip
    threading.Thread(target=server.run, daemon=True).start()
    wait_until(lambda: server.started, stall=60, interval=0.05, what="the web app's start")
    try:
        reply = requests.post(f"http://127.0.0.1:{port}/api/v1/events",
                              json={"events": [creation_item("e2e-trigger-1", email="trigger@exemple.fr")]},
                              headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
        assert reply.json()["accepted"] == 1
        plan_runs: list[dict] = []

        def probe() -> tuple:
            # Progress: the event stored by the server, the automation firing, then the run's states.
            plan_runs[:] = [r for r in requests.post(f"{cluster.api_url}/flow_runs/filter", timeout=10,
                                                     json={"flows": {"name": {"any_": ["plan"]}}}).json()
                            if r["parameters"].get("trigger_event")]  # fmt: skip
            return (_count_events(cluster.api_url, names=["declic.trigger.received"]),
                    _count_events(cluster.api_url, prefix=["prefect.automation."]),
                    tuple(r["state_name"] for r in plan_runs))

        wait_until(probe, lambda seen: bool(plan_runs) and plan_runs[0]["state_type"] in TERMINAL, stall=STALL,
                   interval=0.5, what="partner event -> plan run (events stored, automation events, run states)")
        assert plan_runs, "no plan run was triggered by the event"
        assert plan_runs[0]["state_type"] == "COMPLETED", plan_runs[0]["state"]
        with app.engine.connect() as conn:
            planned = conn.execute(select(TriggerEvent.planned)
                                   .where(TriggerEvent.external_id == "e2e-trigger-1")).scalar()  # fmt: skip
        assert planned is True
    finally:
        server.should_exit = True


def test_a_dispatch_deployment_failing_twice_alerts_the_operators_through_the_outbox(cluster, app, sink):
    api = cluster.api_url
    # `prefect deploy --all` created the automations of prefect.yaml with the deployments.
    assert {"Déclic : plan ou dispatch en échec deux fois", "Déclic : campagne mise en pause",
            "Déclic : flux en échec depuis un jour"} <= set(cluster.automations())
    before = sink.received
    # Two dispatch runs in a row, each failing before its first batch (no batch per task); the good runs of
    # the first test came before them.
    failed = []
    for _ in range(2):
        (run,) = wait_runs(api, [start_run(api, "dispatch/dispatch", {"batches_per_task": 0})], sink)
        assert run["state_type"] == "FAILED", run["state"]
        failed.append(run["id"])
    assert sink.received == before  # nothing from the failing runs themselves (their hook leaves it to Prefect)

    notify_runs: list[dict] = []

    def probe() -> tuple:
        # Progress: the automation's events, the notify-operators run's states, the outbox rows, the sink.
        notify_runs[:] = requests.post(f"{api}/flow_runs/filter", timeout=10,
                                       json={"flows": {"name": {"any_": ["notify-operators"]}}}).json()
        with app.engine.connect() as conn:
            rows = conn.execute(select(Notice.recipient, Notice.status)).all()
        return (_count_events(api, prefix=["prefect.automation."]), tuple(r["state_name"] for r in notify_runs),
                tuple(sorted(rows)), sink.received)

    wait_until(probe, lambda seen: sink.received - before >= len(OPERATORS) and bool(notify_runs)
               and all(r["state_type"] in TERMINAL for r in notify_runs), stall=STALL, interval=1,
               what="two failed dispatch runs -> automation -> notify-operators run -> outbox -> SMTP sink")
    (notify,) = notify_runs
    assert notify["state_type"] == "COMPLETED", notify["state"]
    assert notify["parameters"] == {"cause": "run-failed", "resource": f"prefect.flow-run.{failed[1]}"}
    with app.engine.connect() as conn:
        rows = conn.execute(select(Notice.kind, Notice.recipient, Notice.status)).all()
    assert sorted(rows) == [("run_failed", address, "sent") for address in sorted(OPERATORS)]
    alerts = [m for m in sink.messages if m["Subject"].startswith("[Déclic]")]
    assert sorted(m["To"] for m in alerts) == sorted(OPERATORS)  # one e-mail per operator, once
    assert all(m["Subject"] == "[Déclic] L'envoi des messages (dispatch) a échoué deux fois de suite"
               for m in alerts)
    assert "Que faire" in alerts[0].get_content()
