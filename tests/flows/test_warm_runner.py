"""The warm runner of `declic serve`: plan runs claimed from the Prefect API and executed in this process."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import uuid

from sqlalchemy import func, select

from orchestrator.core.campaign_spec import load_spec
from store.admin import apply_campaign
from store.events import store_events
from store.models import Message
from tests.utils.factories import campaign_spec, creation_item
from tests.utils.waiting import wait_until
from triggers.partner_api import validate_item


def _plan_deployment(**options):
    # A deployment of its own per test: runs and concurrency slots of another test cannot interfere.
    from orchestrator.prefect.flows import plan_flow

    return plan_flow.to_deployment(name=f"plan-warm-{uuid.uuid4().hex[:8]}", **options), plan_flow


def test_due_plan_runs_run_here_once_and_the_rest_are_folded(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client

    from orchestrator.prefect.warm import WarmRunner

    apply_campaign(engine, load_spec(campaign_spec()), now=dt.datetime.now(dt.UTC))
    store_events(engine, [validate_item(creation_item(f"w-{i}", email=f"w{i}@exemple.fr"), "partner:0", "bge",
                                        today=dt.date.today()) for i in range(4)], now=dt.datetime.now(dt.UTC))
    deployment, flow = _plan_deployment(concurrency_limit=1)
    deployment_id = deployment.apply()
    runner = WarmRunner(deployment_id, flow)
    with get_client(sync_client=True) as client:
        runs = [client.create_flow_run_from_deployment(deployment_id, parameters={"trigger_event": f"e{i}"})
                for i in range(3)]
        # An operator's run asks for other work (a limit): it is not folded, it runs after.
        limited = client.create_flow_run_from_deployment(deployment_id, parameters={"limit": 1})
        assert runner.run_due(client) == 1
        states = {run.id: client.read_flow_run(run.id).state for run in runs}
        assert client.read_flow_run(limited.id).state.type.value == "SCHEDULED"
        assert runner.run_due(client) == 1
        # Nothing is left to run: the folded runs are no longer scheduled.
        assert runner.run_due(client) == 0
        assert client.read_flow_run(limited.id).state.type.value == "COMPLETED"

    assert [states[run.id].type.value for run in runs] == ["COMPLETED", "CANCELLED", "CANCELLED"]
    assert runs[0].name in states[runs[1].id].message
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Message)).scalar() == 4


def test_a_run_taken_by_someone_else_between_the_look_and_the_claim_is_left_alone(
        prefect_harness, env_settings, engine, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.states import Pending
    from prefect.utilities.engine import propose_state_sync

    from orchestrator.prefect.warm import WarmRunner

    deployment, flow = _plan_deployment()
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id)
        seen = client.get_scheduled_flow_runs_for_deployments([deployment_id])  # the runner's look...
        assert [r.id for r in seen] == [run.id]
        propose_state_sync(client, Pending(), flow_run_id=run.id)  # ...then a worker claims it first
        monkeypatch.setattr(client, "get_scheduled_flow_runs_for_deployments", lambda *a, **k: list(seen))
        assert WarmRunner(deployment_id, flow).run_due(client) == 0
        state = client.read_flow_run(run.id).state
        assert state.type.value == "PENDING" and client.read_flow_run(run.id).infrastructure_pid is None


def test_runs_a_dead_serve_left_are_ended_and_other_runners_runs_are_not(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client
    from prefect.states import Pending, Running
    from prefect.utilities.engine import propose_state_sync

    from orchestrator.prefect.warm import WarmRunner

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that no longer exists
    deployment, flow = _plan_deployment(concurrency_limit=1)
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        def running(label: str, force: bool = False):
            run = client.create_flow_run_from_deployment(deployment_id)
            propose_state_sync(client, Pending(), flow_run_id=run.id, force=force)
            propose_state_sync(client, Running(), flow_run_id=run.id, force=force)
            client.update_flow_run(run.id, infrastructure_pid=label)
            return run

        orphan = running(f"declic-warm:{socket.gethostname()}:{dead.pid}")
        runner = WarmRunner(deployment_id, flow)
        assert runner.recover(client) == 1
        assert client.read_flow_run(orphan.id).state.type.value == "CRASHED"
        # The concurrency slot is free again: the next run is claimed and runs at once.
        waiting = client.create_flow_run_from_deployment(deployment_id)
        assert runner.run_due(client) == 1
        assert client.read_flow_run(waiting.id).state.type.value == "COMPLETED"
        # A worker's run, or a live warm runner's (this process), is not ours to end.
        # Both are set running by force: they stand for runs claimed elsewhere, and with the deployment's one slot
        # taken the second would wait for it (a loaded server can still hold the finished run's slot too).
        workers = running("12345", force=True)
        alive = running(f"declic-warm:{socket.gethostname()}:{os.getpid()}", force=True)
        assert runner.recover(client) == 0
        assert {client.read_flow_run(r.id).state.type.value for r in (workers, alive)} == {"RUNNING"}


def test_a_scheduled_run_wakes_the_runner_without_waiting_for_its_poll(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client

    from orchestrator.prefect.warm import WarmRunner

    deployment, flow = _plan_deployment()
    deployment_id = deployment.apply()
    runner = WarmRunner(deployment_id, flow, poll_seconds=600).start()  # the timer alone would wait 10 minutes
    try:
        assert runner.listening.wait(30)
        wait_until(lambda: runner.polls, stall=30, interval=0.05, what="the runner's first look, at start")
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(deployment_id)
            # Progress is the run's state (Scheduled, Pending, Running...): no fixed deadline on a loaded machine.
            wait_until(lambda: client.read_flow_run(run.id).state.name, lambda state: state == "Completed",
                       stall=30, interval=0.2, what="the woken run")
            assert client.read_flow_run(run.id).state.type.value == "COMPLETED"
    finally:
        runner.stop()
