"""The warm runner of `declic serve`: plan runs claimed from the Prefect API and executed in this process."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import func, select

from orchestrator.campaign_spec import load_spec
from store.admin import apply_campaign
from store.events import store_events
from store.models import Message
from tests.utils.factories import campaign_spec, creation_item
from triggers.partner_api import validate_item


def _plan_deployment(**options):
    # A deployment of its own per test: runs and concurrency slots of another test cannot interfere.
    from orchestrator.flows import plan_flow

    return plan_flow.to_deployment(name=f"plan-warm-{uuid.uuid4().hex[:8]}", **options), plan_flow


def test_due_plan_runs_run_here_once_and_the_rest_are_folded(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client

    from orchestrator.warm import WarmRunner

    apply_campaign(engine, load_spec(campaign_spec()))
    store_events(engine, [validate_item(creation_item(f"w-{i}", email=f"w{i}@exemple.fr"), "partner:0", "bge")
                          for i in range(4)])
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


def test_a_run_taken_by_someone_else_is_left_alone(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client
    from prefect.states import Pending
    from prefect.utilities.engine import propose_state_sync

    from orchestrator.warm import WarmRunner

    deployment, flow = _plan_deployment()
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id)
        propose_state_sync(client, Pending(), flow_run_id=run.id)  # a worker claimed it first
        assert WarmRunner(deployment_id, flow).run_due(client) == 0
        assert client.read_flow_run(run.id).state.type.value == "PENDING"


def test_runs_left_claimed_or_running_by_a_stopped_serve_are_marked_crashed(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client
    from prefect.states import Pending, Running
    from prefect.utilities.engine import propose_state_sync

    from orchestrator.warm import WarmRunner

    deployment, flow = _plan_deployment(concurrency_limit=1)
    deployment_id = deployment.apply()
    with get_client(sync_client=True) as client:
        orphan = client.create_flow_run_from_deployment(deployment_id)
        propose_state_sync(client, Pending(), flow_run_id=orphan.id)
        propose_state_sync(client, Running(), flow_run_id=orphan.id)
        waiting = client.create_flow_run_from_deployment(deployment_id)
        runner = WarmRunner(deployment_id, flow)
        assert runner.recover(client) == 1
        assert client.read_flow_run(orphan.id).state.type.value == "CRASHED"
        # The concurrency slot is free again: the next run is claimed and runs at once.
        assert runner.run_due(client) == 1
        assert client.read_flow_run(waiting.id).state.type.value == "COMPLETED"


def test_a_scheduled_run_wakes_the_runner_without_waiting_for_its_poll(prefect_harness, env_settings, engine):
    from prefect.client.orchestration import get_client

    from orchestrator.warm import WarmRunner

    deployment, flow = _plan_deployment()
    deployment_id = deployment.apply()
    runner = WarmRunner(deployment_id, flow, poll_seconds=600).start()  # the timer alone would wait 10 minutes
    try:
        assert runner.listening.wait(30)
        deadline = time.monotonic() + 30
        while runner.polls == 0 and time.monotonic() < deadline:  # its first look, at start
            time.sleep(0.05)
        with get_client(sync_client=True) as client:
            run = client.create_flow_run_from_deployment(deployment_id)
            while client.read_flow_run(run.id).state.type.value != "COMPLETED" and time.monotonic() < deadline:
                time.sleep(0.2)
            assert client.read_flow_run(run.id).state.type.value == "COMPLETED"
    finally:
        runner.stop()
