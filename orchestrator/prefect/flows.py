"""Prefect flows: thin. They sequence batch tasks; the logic lives in plain functions of the other rooms.

`plan` turns new trigger events into enrollments and planned messages; `dispatch` sends what is due; the
intake flows (Sirene, BODACC, the regulatory calendar, the watched feeds) bring events in; `rollup` computes
the nightly metrics. Each task handles a whole batch (thousands of rows), never one row: Prefect's cost is
per task run (PREFECT-NOTES.md), and delivery state lives in our own tables.

Every flow reads its settings from the environment (`DECLIC_*`), so a worker on another machine only needs
the same environment. Parameters are strings or numbers: event-template parameters arrive as strings.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    DeploymentFilter,
    DeploymentFilterId,
    FlowFilter,
    FlowFilterId,
    FlowRunFilter,
    FlowRunFilterDeploymentId,
    FlowRunFilterEndTime,
    FlowRunFilterId,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.client.schemas.sorting import FlowRunSort
from prefect.events import emit_event
from prefect.runtime import deployment, flow_run
from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

from orchestrator.app import alerts
from orchestrator.app.bootstrap import bootstrap, system_clock
from orchestrator.app.dispatch import dispatch_all, worker_id
from orchestrator.app.feeds import watch_due_feeds
from orchestrator.app.ingest import emit_deadlines, ingest_bodacc, ingest_sirene
from orchestrator.app.planning import plan_batch
from orchestrator.app.privacy import purge
from orchestrator.app.rollup import rollup
from orchestrator.app.run_tally import plan_tally
from orchestrator.app.settings import get_settings
from orchestrator.core import run_reports
from store.ops_metrics import campaign_names, feed_marks, paused_campaigns, rollup_summary


def _now(now: str | None) -> dt.datetime | None:
    # Flow parameters travel as strings (event-template parameters must be strings).
    return dt.datetime.fromisoformat(now) if now else None


def _run_label() -> str:
    # The flow run's readable name and short id, so a log line leads back to the run in the UI.
    run_id = flow_run.get_id()
    return f"{flow_run.get_name() or '-'} ({str(run_id)[:8] if run_id else 'local'})"


def _campaigns(counter: Counter) -> str:
    return ", ".join(f"campaign {cid}: {n}" for cid, n in sorted(counter.items())) or "no campaign"


# --- what a run says about itself: its name, its artifacts, its log lines, its alerts ---

def _zone() -> ZoneInfo:
    # Run names are computed by Prefect before any App exists: the zone of the settings the App is built from.
    return ZoneInfo(get_settings().timezone)


def _local_time(now: str | None) -> str:
    moment = _now(now) or system_clock()
    return moment.astimezone(_zone()).strftime("%H:%M")


def _local_today() -> str:
    return system_clock().astimezone(_zone()).date().isoformat()


def plan_run_name() -> str:
    """`plan · événement 1a2b3c4d` (started by a partner batch) or `plan · 10:05` (local time)."""
    params = flow_run.parameters or {}
    event = params.get("trigger_event")
    return f"plan · événement {str(event)[:8]}" if event else f"plan · {_local_time(params.get('now'))}"


def dispatch_run_name() -> str:
    """`dispatch · 10:05` (local time)."""
    return f"dispatch · {_local_time((flow_run.parameters or {}).get('now'))}"


def sirene_run_name() -> str:
    """`sirene · StockEtablissement 2026-12` (the file's stem and the month of the run)."""
    params = flow_run.parameters or {}
    stem = Path(str(params.get("path") or "")).name.split(".")[0]
    stem = re.sub(r"_utf8$", "", stem) or params.get("kind", "stock")
    month = (params.get("today") or _local_today())[:7]
    return f"sirene · {stem} {month}"


def _file_run_name(label: str) -> Callable[[], str]:
    def name() -> str:

        params = flow_run.parameters or {}
        what = Path(str(params["path"])).name if params.get("path") else (params.get("only") or "")
        day = params.get("today") or params.get("day") or _local_today()
        return " · ".join(part for part in (label, what, day) if part)
    return name


def _publish(artifacts: list[run_reports.Artifact]) -> None:
    # Prefect's artifact API; everything else about a report is built in orchestrator/core/run_reports.py.
    for artifact in artifacts:
        if artifact.table is not None:
            create_table_artifact(artifact.table, key=artifact.key, description=artifact.description)
        else:
            create_markdown_artifact(artifact.markdown or "", key=artifact.key, description=artifact.description)


_json_logger = logging.getLogger("declic.runs")


def _fr(counts: dict[str, Any]) -> str:
    """Counts as a person reads them in the run log: "clé : n, clé : n" (the JSON line keeps the dict)."""
    return ", ".join(f"{key} : {value}" for key, value in dict(counts).items())


def _log(event: str, text: str, **fields: Any) -> None:
    """The run's log line: French in the Prefect UI; with DECLIC_LOG_FORMAT=json, also one JSON object per
    event on stderr (run id, campaign, channel, counts; never an address, a name of a person or a token)."""
    get_run_logger().info(text)
    if get_settings().log_format.lower() == "json":
        if not _json_logger.handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            _json_logger.addHandler(handler)
            _json_logger.setLevel(logging.INFO)
            _json_logger.propagate = False
        run_id = flow_run.get_id()
        _json_logger.info(run_reports.log_line(
            "json", event, text, at=system_clock().isoformat(timespec="seconds"),
            run_id=str(run_id) if run_id else None, run=flow_run.get_name(), flow=flow_run.get_flow_name(),
            **fields))


def _failure_alert(app, run, state) -> alerts.Alert | None:
    """The alert of a failed `plan` or `dispatch` run, read from the Prefect API: the state of the run before
    it (same deployment; for a run by hand, same flow and no deployment) and the last success, which names the
    streak (so the runs failing after the second one report the same cause, queued once)."""
    ended = run.end_time or state.timestamp or app.clock()
    with get_client(sync_client=True) as client:
        flow_name = client.read_flow(run.flow_id).name

        def newest(*types: StateType):
            found = client.read_flow_runs(
                flow_filter=FlowFilter(id=FlowFilterId(any_=[run.flow_id])),
                deployment_filter=(DeploymentFilter(id=DeploymentFilterId(any_=[run.deployment_id]))
                                   if run.deployment_id else None),
                flow_run_filter=FlowRunFilter(
                    id=FlowRunFilterId(not_any_=[run.id]), end_time=FlowRunFilterEndTime(before_=ended),
                    state=FlowRunFilterState(type=FlowRunFilterStateType(any_=list(types))),
                    deployment_id=None if run.deployment_id else FlowRunFilterDeploymentId(is_null_=True)),
                sort=FlowRunSort.END_TIME_DESC, limit=1)
            return found[0] if found else None

        previous = newest(StateType.COMPLETED, StateType.FAILED, StateType.CRASHED)
        success = newest(StateType.COMPLETED)
    states = [state.type.value] + ([previous.state.type.value] if previous and previous.state else [])
    streak = f"{run.deployment_id or flow_name}:{success.id if success else 'sans-succes'}"
    return alerts.run_failed_alert(flow_name, run.name, state.message or state.name, states, ended, streak,
                                   app.zone)


def _alert_on_repeated_failure(flow, run, state) -> None:
    """on_failure / on_crashed hook of `plan` and `dispatch`, for the runs no automation watches (in-process:
    `declic dispatch`, tests): alert the operators at the second failure in a row. A deployment's runs are
    watched by the automation of `notify-operators` (prefect.yaml): there the hook says nothing (one alert
    per cause; orchestrator/app/alerts.py)."""
    if run.deployment_id:
        return
    try:
        app = bootstrap()
        alerts.notify(app, _failure_alert(app, run, state))
    except Exception:  # noqa: BLE001 (an alert that cannot leave must not hide the run's own failure)
        logging.getLogger("declic.alerts").exception("alerte d'échec répété non envoyée")


def _deployed() -> bool:
    # A deployment's run is watched by the automations of `notify-operators`; a run by hand alerts by itself.

    return bool(deployment.id)


def _announce(event: str, resource_id: str, name: str) -> None:
    """Emit one of Déclic's own events for the automations of prefect.yaml (best effort: never fails a run)."""
    try:
        emit_event(event=event, resource={"prefect.resource.id": resource_id, "prefect.resource.name": name})
    except Exception:  # noqa: BLE001
        logging.getLogger("declic.alerts").exception("événement %s non émis pour %s", event, name)


# --- planning and dispatch ---


@task(name="plan-batch", cache_policy=NONE)
def plan_batch_task(now: str | None, limit: int | None) -> tuple[dict[str, int], dict[tuple[int, str], int]]:
    app = bootstrap()
    with plan_tally() as by_campaign:
        counts = plan_batch(app, now=_now(now), limit=limit)
    return dict(counts), dict(by_campaign)


@task(name="dispatch-batches", cache_policy=NONE, retries=2, retry_delay_seconds=[2, 10])
def dispatch_batches_task(now: str | None, limit: int | None, owner: str,
                          batches: int) -> tuple[dict[str, int], dict[int, int], dict[tuple[int, str, str], int]]:
    # Several batches per task run: Prefect's cost is per task run, one SMTP session serves them all, and
    # `dispatch_all` renders the next batch while the current one is on the wire.
    app = bootstrap()
    by_campaign: Counter = Counter()
    by_outcome: Counter = Counter()
    try:
        counts = dispatch_all(app, now=_now(now), max_batches=batches, limit=limit, owner=owner,
                              by_campaign=by_campaign, by_outcome=by_outcome)
        return dict(counts), dict(by_campaign), dict(by_outcome)
    finally:
        app.close()


@task(name="run-report", cache_policy=NONE, retries=1, retry_delay_seconds=[5])
def report_task(kind: str, total: dict[str, int], detail: dict, since: str | None = None) -> int:
    """Publish the run's artifacts (`kind` "plan" or "dispatch"); for dispatch, announce each campaign paused
    on its error rate during the run (`declic.campaign.paused`: the operators' alert). Returns how many."""
    app = bootstrap()
    ids = {key[0] for key in detail}
    with app.engine.connect() as conn:
        names = campaign_names(conn, ids)
        paused = paused_campaigns(conn)
    fresh = alerts.paused_since(app, dt.datetime.fromisoformat(since)) if since else []
    build = run_reports.plan_artifacts if kind == "plan" else run_reports.dispatch_artifacts
    _publish(build(total, detail, names, paused))
    if kind == "dispatch" and total.get("paused_campaigns") and fresh:
        deployed = _deployed()
        for campaign in fresh:
            _announce("declic.campaign.paused", f"declic.campaign.{campaign.id}", campaign.name)
            if not deployed:
                alerts.notify_campaign_paused(app, campaign.id)
    return len(fresh)


@flow(name="plan", log_prints=False, flow_run_name=plan_run_name,
      on_failure=[_alert_on_repeated_failure], on_crashed=[_alert_on_repeated_failure])
def plan_flow(now: str | None = None, limit: int | None = None, max_batches: int = 1000,
              trigger_event: str | None = None) -> dict[str, int]:
    """Plan every unplanned trigger event, batch by batch.

    `trigger_event` is the id of the Prefect event that started this run (event trigger), for the logs.
    """
    run = _run_label()
    total: Counter = Counter()
    by_campaign: Counter = Counter()
    for number in range(1, max_batches + 1):
        counts, tally = plan_batch_task(now, limit)
        if not counts:
            break
        _log("plan.batch", f"run {run}, lot de planification {number} (événement {trigger_event or '-'}) : "
             f"{_fr(counts)}", batch=number, counts=counts)
        total.update(counts)
        by_campaign.update(tally)
    for (campaign_id, outcome), n in sorted(by_campaign.items()):
        _log("plan.campaign", f"run {run}, campagne {campaign_id} : {outcome} {n}",
             campaign=campaign_id, outcome=outcome, count=n)
    report_task("plan", dict(total), dict(by_campaign))
    _log("plan.done", f"run {run} : planification terminée, {_fr(total) or 'rien en attente'}", counts=dict(total))
    return dict(total)


@flow(name="dispatch", log_prints=False, flow_run_name=dispatch_run_name,
      on_failure=[_alert_on_repeated_failure], on_crashed=[_alert_on_repeated_failure])
def dispatch_flow(now: str | None = None, limit: int | None = None, max_batches: int = 1000,
                  batches_per_task: int = 10) -> dict[str, int]:
    """Send every due message, batch by batch (several runs may work at once: claims are row locks)."""
    run = _run_label()
    owner = worker_id()
    started = system_clock() if now is None else _now(now).astimezone(dt.UTC)
    total: Counter = Counter()
    by_outcome: Counter = Counter()
    for first in range(1, max_batches + 1, batches_per_task):
        wanted = min(batches_per_task, max_batches - first + 1)
        counts, by_campaign, outcomes = dispatch_batches_task(now, limit, owner, wanted)
        if not counts:
            break
        _log("dispatch.batches", f"run {run}, lots d'envoi à partir du n° {first} par {owner} "
             f"({_campaigns(Counter(by_campaign))}) : {_fr(counts)}", first_batch=first, counts=counts)
        total.update(counts)
        by_outcome.update(outcomes)
    for (campaign_id, channel, outcome), n in sorted(by_outcome.items()):
        _log("dispatch.campaign", f"run {run}, campagne {campaign_id}, {channel} : {outcome} {n}",
             campaign=campaign_id, channel=channel, outcome=outcome, count=n)
    report_task("dispatch", dict(total), dict(by_outcome), since=started.isoformat())
    _log("dispatch.done", f"run {run} : envoi terminé, {_fr(total) or 'rien à envoyer'}", counts=dict(total))
    return dict(total)


# --- intake: the file ingesters of triggers/, the regulatory calendar, the watched feeds ---


def _report(result: Any) -> dict[str, Any]:
    # Ingest functions return an IngestReport (triggers/report.py) or a plain dict.
    return result.to_dict() if hasattr(result, "to_dict") else dict(result or {})


@task(name="ingest-file", cache_policy=NONE, retries=1, retry_delay_seconds=[30])
def ingest_task(ingest: Callable[..., Any], path: str, today: str | None) -> dict[str, Any]:
    """Run a file ingester of orchestrator/app/ingest.py (`ingest_sirene`, `ingest_bodacc`) on `path`."""
    app = bootstrap()
    day = dt.date.fromisoformat(today) if today else app.today()
    first = run_reports.FirstRejects()
    report = _report(ingest(app.engine, path, today=day, now=app.now(), rejects=first))
    return {**report, "first_rejects": first.rows}


def _ingest_report(source: str, what: str, report: dict[str, Any]) -> dict[str, Any]:
    # The artifacts of an ingest run; the flow's return value stays the ingest report itself.
    report = dict(report)
    first = report.pop("first_rejects", [])
    _publish(run_reports.ingest_artifacts(source, what, report, first))
    _log(f"ingest.{source}", f"run {_run_label()} : {source} {what} : {_fr(report)}", source=source,
         read=report.get("read", 0), accepted=report.get("accepted", 0), rejected=report.get("rejected", {}),
         events=report.get("events", {}))
    return report


@flow(name="ingest-sirene", log_prints=False, flow_run_name=sirene_run_name)
def sirene_flow(path: str, kind: str = "stock", today: str | None = None) -> dict[str, Any]:
    """Ingest a Sirene StockEtablissement file (`kind` "stock", monthly) or a daily update file."""
    return _ingest_report("sirene", f"{kind} {path}", ingest_task(ingest_sirene, path, today))


@flow(name="ingest-bodacc", log_prints=False, flow_run_name=_file_run_name("bodacc"))
def bodacc_flow(path: str | None = None, today: str | None = None) -> dict[str, Any]:
    """Ingest a BODACC file, or, without a path, poll the built-in BODACC API feed."""
    if path is None:
        return watch_feeds_flow.fn(only="bodacc")
    return _ingest_report("bodacc", path, ingest_task(ingest_bodacc, path, today))


@task(name="deadline-events", cache_policy=NONE)
def deadlines_task(today: str | None) -> dict[str, Any]:
    app = bootstrap()
    day = dt.date.fromisoformat(today) if today else app.today()
    run = emit_deadlines(app.engine, today=day, now=app.now())
    return {"due": [f"{deadline.id} J-{offset}" for deadline, offset in run.due], **_report(run.report)}


@flow(name="deadlines", log_prints=False, flow_run_name=_file_run_name("échéances"))
def deadlines_flow(today: str | None = None) -> dict[str, Any]:
    """Emit today's reminders of the regulatory calendar to the businesses they concern."""
    return _ingest_report("deadlines", f"calendrier du {today or 'jour'}", deadlines_task(today))


@task(name="watch-feeds", cache_policy=NONE)
def watch_feeds_task(only: str | None, now: str | None) -> list[dict[str, Any]]:
    """Watch the due feeds; announce those now failing for a day (`declic.feed.failing`: the operators' alert)."""
    app = bootstrap()
    with app.engine.connect() as conn:
        before = feed_marks(conn)
    outcomes = watch_due_feeds(app, now=_now(now), only=only)
    failing = alerts.failing_feeds(before, outcomes, (_now(now) or app.clock()).astimezone(dt.UTC))
    deployed = _deployed() if failing else True
    for feed, _state in failing:
        _announce("declic.feed.failing", f"declic.feed.{feed}", feed)
        if not deployed:
            alerts.notify_feed_failing(app, feed, _now(now))
    return outcomes


@flow(name="watch-feeds", log_prints=False, flow_run_name=_file_run_name("flux"))
def watch_feeds_flow(only: str | None = None, now: str | None = None) -> dict[str, Any]:
    """Fetch every due feed (partner files, BODACC and Sirene APIs) and ingest what changed."""
    run = _run_label()
    outcomes = watch_feeds_task(only, now)
    for outcome in outcomes:
        _log("feeds.feed", f"run {run}, flux {outcome['feed']} : {outcome['state']}", feed=outcome["feed"],
             failed=bool(outcome.get("failed")), events=outcome.get("events", 0))
    _publish(run_reports.feeds_artifacts(outcomes))
    return {"feeds": len(outcomes), "events": sum(o.get("events", 0) for o in outcomes),
            "failed": sum(o.get("failed", False) for o in outcomes)}


# --- operator alerts (issue 21): run by the automations of prefect.yaml ---

ALERT_CAUSES = {"run-failed": "exécutions en échec", "campaign-paused": "campagne en pause",
                "feed-failing": "flux en échec"}


def notify_run_name() -> str:
    """`alerte · campagne en pause`."""
    cause = (flow_run.parameters or {}).get("cause", "")
    return f"alerte · {ALERT_CAUSES.get(cause, cause)}"


@task(name="notify-operators", cache_policy=NONE, retries=1, retry_delay_seconds=[10])
def notify_task(cause: str, resource: str) -> dict[str, int]:

    app = bootstrap()
    if cause == "run-failed":
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(uuid.UUID(resource.removeprefix("prefect.flow-run.")))
        return dict(alerts.notify(app, _failure_alert(app, run, run.state)))
    if cause == "campaign-paused":
        return dict(alerts.notify_campaign_paused(app, int(resource.removeprefix("declic.campaign."))))
    if cause == "feed-failing":
        return dict(alerts.notify_feed_failing(app, resource.removeprefix("declic.feed.")))
    raise ValueError(f"unknown alert cause {cause!r} (expected one of {', '.join(ALERT_CAUSES)})")


@flow(name="notify-operators", log_prints=False, flow_run_name=notify_run_name)
def notify_operators_flow(cause: str, resource: str) -> dict[str, int]:
    """Alert the operators about one cause, through Déclic's outbox (orchestrator/app/alerts.py).

    `cause`: "run-failed" (`resource`: the failed run, prefect.flow-run.<id>), "campaign-paused"
    (declic.campaign.<id>) or "feed-failing" (declic.feed.<name>); the automations pass the event's resource.
    The same cause twice queues one alert; the counts are those of the operators' outbox sent now.
    """
    counts = notify_task(cause, resource)
    sent = (f"e-mails envoyés {counts.get('sent', 0)}, à réessayer {counts.get('retry', 0)}, "
            f"en échec {counts.get('failed', 0)}") if counts else "rien de nouveau à envoyer"
    _log("alerts.notify", f"run {_run_label()} : alerte {ALERT_CAUSES.get(cause, cause)} ({resource}) : {sent}",
         cause=cause, counts=counts)
    return counts


# --- metrics ---


@task(name="metrics-rollup", cache_policy=NONE)
def rollup_task(day: str | None) -> dict[str, Any]:

    app = bootstrap()
    when = dt.date.fromisoformat(day) if day else app.today() - dt.timedelta(days=1)
    report = _report(rollup(app.engine, when, now=app.clock()))
    with app.engine.connect() as conn:
        _publish(run_reports.rollup_artifacts(report.get("day"), rollup_summary(conn)))
    return report


@flow(name="metrics-rollup", log_prints=False, flow_run_name=_file_run_name("indicateurs"))
def rollup_flow(day: str | None = None) -> dict[str, Any]:
    """Compute the nightly metrics rollups (yesterday by default)."""
    report = rollup_task(day)
    _log("rollup.done", f"run {_run_label()} : indicateurs du {day or 'jour précédent'} recalculés : {_fr(report)}",
         rows=report.get("rollup_rows", 0))
    return report


# --- personal data (issue 15) ---


@task(name="privacy-purge", cache_policy=NONE)
def privacy_purge_task(now: str | None, dry_run: bool) -> dict[str, dict[str, int]]:

    moment = _now(now)
    return purge(bootstrap(clock=(lambda: moment) if moment else None), dry_run=dry_run)


@flow(name="privacy-retention", log_prints=False, flow_run_name=_file_run_name("conservation"))
def privacy_retention_flow(now: str | None = None, dry_run: bool = False) -> dict[str, dict[str, int]]:
    """Apply the retention policy of personal data (the same service as `declic privacy purge`)."""
    counts = privacy_purge_task(now, dry_run)
    _log("privacy.purge", f"run {_run_label()} : purge de conservation : {_fr(counts)}",
         rows=sum(n for by_owner in counts.values() for n in by_owner.values()))
    return counts


def run_once(flow_fn, **params) -> dict[str, int]:
    """Run a flow in this process without the ~1 s heartbeat join at the end of sync flows."""
    with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        return flow_fn(**params)
