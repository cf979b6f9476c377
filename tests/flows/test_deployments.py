"""prefect.yaml: one deployment per flow, French schedules, string event parameters, limits where runs must
not overlap; and `declic serve` builds the same deployments from it."""

from __future__ import annotations

import pytest
from prefect import Flow

from orchestrator.prefect.serve import read_deployments, runner_deployments

SPECS = {spec.name: spec for spec in read_deployments()}


def test_every_flow_has_a_deployment():
    assert set(SPECS) == {"plan", "dispatch", "sirene-stock", "sirene-updates", "bodacc", "deadlines",
                          "metrics-rollup", "watch-feeds", "privacy-retention", "notify-operators"}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_entrypoints_are_flows_with_the_declared_parameters(name):
    import importlib

    spec = SPECS[name]
    flow = getattr(importlib.import_module(spec.module), spec.function)
    assert isinstance(flow, Flow)
    assert set(spec.parameters) <= set(flow.parameters.properties)


def test_schedules_are_french_time():
    for spec in SPECS.values():
        assert spec.crons or spec.name == "notify-operators", f"{spec.name} has no schedule"  # run by automations
        assert all(tz == "Europe/Paris" for _, tz in spec.crons)
    assert SPECS["dispatch"].crons == [("* 8-19 * * 1-6", "Europe/Paris")]


def test_plan_starts_on_the_trigger_event_with_string_parameters():
    (trigger,) = SPECS["plan"].triggers
    assert trigger["expect"] == ["declic.trigger.received"]
    # A bare "{{ event.id }}" makes the trigger fail silently (UUID not JSON serialisable).
    for value in trigger["parameters"].values():
        assert "| string" in value


def test_operator_alerts_are_automations_of_the_notify_deployment():
    triggers = {t["name"]: t for t in SPECS["notify-operators"].triggers}
    failing = triggers["Déclic : plan ou dispatch en échec deux fois"]
    assert set(failing["expect"]) == {"prefect.flow-run.Failed", "prefect.flow-run.Crashed"}
    assert failing["match_related"] == {"prefect.resource.role": "deployment",
                                        "prefect.resource.name": ["plan", "dispatch"]}
    assert (failing["threshold"], failing["within"]) == (2, 3600)
    assert failing["for_each"] == ["related:deployment:prefect.resource.id"]  # counted per deployment
    assert triggers["Déclic : campagne mise en pause"]["expect"] == ["declic.campaign.paused"]
    assert triggers["Déclic : flux en échec depuis un jour"]["expect"] == ["declic.feed.failing"]
    causes = {t["parameters"]["cause"] for t in triggers.values()}
    assert causes == {"run-failed", "campaign-paused", "feed-failing"}
    assert all(t["parameters"]["resource"] == "{{ event.resource.id }}" for t in triggers.values())
    # `declic serve` builds the same automations (RunDeployment of notify-operators with these parameters).
    (notify,) = runner_deployments([SPECS["notify-operators"]])
    assert {t.name for t in notify.triggers} == set(triggers)
    assert {t.parameters["cause"] for t in notify.triggers} == causes


def test_runs_that_must_not_overlap_are_limited_and_dispatch_is_not():
    assert SPECS["dispatch"].concurrency_limit is None  # several workers share the outbox by row locks
    for name in ("plan", "sirene-stock", "sirene-updates", "bodacc", "deadlines", "metrics-rollup",
                 "watch-feeds", "privacy-retention"):
        assert SPECS[name].concurrency_limit == 1, name


def test_serve_builds_runner_deployments_from_the_same_file():
    deployments = {d.name: d for d in runner_deployments(list(SPECS.values()))}
    plan = deployments["plan"]
    assert plan.triggers and plan.triggers[0].parameters == {"trigger_event": "{{ event.id | string }}"}
    assert plan.schedules[0].schedule.timezone == "Europe/Paris"
    assert deployments["sirene-updates"].parameters == {"only": "sirene"}


def test_the_planner_needs_a_prefect_server_and_says_so(monkeypatch):
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(app, ["planner"])
    assert result.exit_code == 2
    assert "PREFECT_API_URL" in result.output


def test_the_planner_names_a_missing_deployment(prefect_harness, env_settings, monkeypatch):
    from prefect.settings import PREFECT_API_URL
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    monkeypatch.setenv("PREFECT_API_URL", PREFECT_API_URL.value())
    result = CliRunner().invoke(app, ["planner", "--deployment", "plan/absent"])
    assert result.exit_code == 2
    assert "plan/absent" in result.output and "prefect deploy" in result.output
