"""`declic serve` on the embedded default: one command runs the web app and every deployment."""

from __future__ import annotations

import requests
from sqlalchemy import create_engine, select

from orchestrator.prefect.serve import ALERTS_DEPLOYMENT, read_deployments
from store.models import TriggerEvent
from tests.utils.factories import creation_item
from tests.utils.serve import declic_serve
from tests.utils.waiting import wait_until


def _plan_runs(api: str) -> list[dict]:
    return requests.post(f"{api}/flow_runs/filter", timeout=10,
                         json={"flows": {"name": {"any_": ["plan"]}}, "sort": "START_TIME_DESC"}).json()


def _automations(api: str) -> list[str]:
    return sorted(a["name"] for a in requests.post(f"{api}/automations/filter", json={}, timeout=10).json())


def test_a_partner_batch_is_planned_by_the_served_plan_deployment(tmp_path):
    with declic_serve(tmp_path, "serve-test-secret-0123456789abcdef") as served:
        names = {d["name"] for d in requests.post(f"{served.api}/deployments/filter", json={}, timeout=10).json()}
        assert names == {spec.name for spec in read_deployments()}
        # The operators' alerts: each trigger of notify-operators is an automation of the served server.
        alerts = next(spec for spec in read_deployments() if spec.name == ALERTS_DEPLOYMENT)
        wanted = {trigger["name"] for trigger in alerts.triggers}
        wait_until(lambda: _automations(served.api), lambda found: len(wanted) == 3 and wanted <= set(found),
                   stall=60, interval=0.5, what="declic serve -> the operators' alert automations")

        reply = requests.post(f"{served.web}/api/v1/events", timeout=30,
                              headers={"Authorization": f"Bearer {served.token}"},
                              json={"events": [creation_item("serve-1")]})
        assert reply.status_code == 200, reply.text
        # Progress is the plan runs' states: the wait fails when they stay the same for two minutes.
        wait_until(lambda: [(r["state_name"], bool(r["parameters"].get("trigger_event")))
                            for r in _plan_runs(served.api)],
                   lambda runs: ("Completed", True) in runs, stall=120, interval=0.3,
                   what="partner event -> completed plan run (plan runs: state, started by an event)")
        # Started by the partner event (its id as a string parameter), and the event is planned in the store.
        engine = create_engine(f"sqlite:///{tmp_path / 'declic.db'}")
        with engine.connect() as conn:
            assert conn.execute(select(TriggerEvent.planned)).scalars().all() == [True]
        engine.dispose()

    # SIGTERM stops everything it started, the local Prefect server included.
    assert served.proc.returncode == 0
    try:
        requests.get(f"{served.api}/health", timeout=2)
    except requests.ConnectionError:
        pass
    else:
        raise AssertionError("the local Prefect server still answers after declic serve stopped")
