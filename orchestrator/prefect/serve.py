"""`declic serve`: the web app and every deployment on one machine, in one command.

The deployments are read from prefect.yaml (one source of truth for names, schedules, event triggers,
parameters and concurrency limits) and served by `prefect.serve` in this process: no work pool, no worker.
Planning, which partner events start, runs warm in this process (orchestrator/prefect/warm.py) instead of in a new
Python process per run, so that it begins within about 2 s of the event.
Event triggers need a Prefect API that runs its background services, so on the embedded default (no
PREFECT_API_URL) a local Prefect server on SQLite is started under DECLIC_HOME and stopped on exit. The operators'
alerts are such triggers too: those of `notify-operators` become its automations when it is served.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestrator.app.settings import get_settings, prepare_prefect_env

PREFECT_YAML = Path(__file__).resolve().parents[2] / "prefect.yaml"
WARM_DEPLOYMENTS = ("plan",)  # run inside `declic serve`: started by events, expected within seconds
ALERTS_DEPLOYMENT = "notify-operators"  # its triggers are the operators' alerts (orchestrator/app/alerts.py)
logger = logging.getLogger("declic.serve")


@dataclass(frozen=True)
class DeploymentSpec:
    """One deployment of prefect.yaml, as plain data."""
    name: str
    module: str
    function: str
    parameters: dict[str, Any]
    crons: list[tuple[str, str]]  # (cron, timezone)
    triggers: list[dict[str, Any]]
    concurrency_limit: int | None
    description: str | None
    tags: tuple[str, ...] = ()  # the purpose (planification, envoi, collecte...), shown and filterable in the UI


def read_deployments(path: Path = PREFECT_YAML) -> list[DeploymentSpec]:
    """The deployments declared in prefect.yaml."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out = []
    for entry in data.get("deployments") or []:
        file, _, function = entry["entrypoint"].partition(":")
        module = file.removesuffix(".py").replace("/", ".")
        out.append(DeploymentSpec(
            name=entry["name"], module=module, function=function,
            parameters=dict(entry.get("parameters") or {}),
            crons=[(s["cron"], s.get("timezone", "UTC")) for s in entry.get("schedules") or []
                   if "cron" in s],
            triggers=[dict(t) for t in entry.get("triggers") or []],
            concurrency_limit=entry.get("concurrency_limit"), description=entry.get("description"),
            tags=tuple(entry.get("tags") or ()),
        ))
    return out


def load_flow(spec: DeploymentSpec):
    """The flow object behind a deployment's entrypoint."""
    return getattr(importlib.import_module(spec.module), spec.function)


def runner_deployments(specs: list[DeploymentSpec]) -> list:
    """`RunnerDeployment`s for `prefect.serve`: the schedules, triggers and limits of prefect.yaml."""
    # Prefect is imported inside the functions: `serve` and `plan_warm` first point PREFECT_HOME at DECLIC_HOME.
    from prefect.client.schemas.schedules import CronSchedule
    from prefect.events import DeploymentEventTrigger

    out = []
    for spec in specs:
        flow = load_flow(spec)
        triggers = [DeploymentEventTrigger(**{k: v for k, v in t.items() if k != "type"})
                    for t in spec.triggers]
        out.append(flow.to_deployment(
            name=spec.name, parameters=spec.parameters or None, description=spec.description,
            schedules=[CronSchedule(cron=cron, timezone=tz) for cron, tz in spec.crons] or None,
            triggers=triggers or None, concurrency_limit=spec.concurrency_limit, tags=list(spec.tags) or None,
        ))
    return out


def alerts_line(automations: int, operator_emails: str | None) -> str:
    """What the operators' alerts will do, in one line (`declic serve` and scripts/scale_out.py print it)."""
    if not (operator_emails or "").strip():
        return (f"Alertes aux opérateurs : {automations} automatisations, mais DECLIC_OPERATOR_EMAILS est vide : "
                "elles ne préviendront personne")
    return f"Alertes aux opérateurs : {automations} automatisations, e-mails à {operator_emails.strip()}"


class LocalPrefectServer:
    """A `prefect server start` child on SQLite under `home`, in its own process group (stopped by its id)."""
    def __init__(self, home: Path, port: int) -> None:
        self.home, self.port = home, port
        self.proc: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self, timeout: float = 90) -> LocalPrefectServer:
        import requests  # only when a local server is started (reading prefect.yaml needs none)

        self.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PREFECT_SERVER_UI_ENABLED=os.environ.get("PREFECT_SERVER_UI_ENABLED", "true"))
        env.pop("PREFECT_API_URL", None)
        log = open(self.home / "server.log", "ab")  # noqa: SIM115 (the child's lifetime)
        prefect = Path(sys.executable).parent / "prefect"
        self.proc = subprocess.Popen([str(prefect) if prefect.exists() else "prefect", "server", "start",
                                      "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local Prefect server exited; see {self.home / 'server.log'}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.api_url}/health", timeout=2).ok:
                    return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the local Prefect server did not answer within {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc = None


def start_web(host: str, port: int, app=None):
    """The web app (built from the environment unless given) under uvicorn in a daemon thread; returns the
    server (set `should_exit` to stop it). Its access log masks the tokens of links and callbacks."""
    import uvicorn  # the web app and its server load only when the web is served (`--no-web` skips 1.2 s)

    from web import log_redaction
    from web.app import create_app

    config = uvicorn.Config(app or create_app(), host=host, port=port, log_level="info")
    log_redaction.install()  # after uvicorn.Config, which (re)configures its loggers
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, name="declic-web", daemon=True).start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    return server


def serve(*, host: str = "127.0.0.1", port: int = 8000, prefect_port: int = 4200, web: bool = True,
          limit: int | None = None) -> None:
    """Run the web app and every deployment until interrupted (Ctrl-C or SIGTERM)."""
    settings = get_settings()
    prepare_prefect_env(settings.home)
    # Runs start within about a second of being scheduled or triggered (default poll: 10 s).
    os.environ.setdefault("PREFECT_RUNNER_POLL_FREQUENCY", "1")
    local = None
    if not os.environ.get("PREFECT_API_URL"):
        local = LocalPrefectServer(Path(os.environ["PREFECT_HOME"]), prefect_port).start()
        os.environ["PREFECT_API_URL"] = local.api_url
        write_api_url(settings.home, local.api_url)
        print(f"Prefect local sur {local.api_url.removesuffix('/api')} (SQLite sous {local.home})",
              flush=True)
    web_server, warm = None, []
    try:
        import prefect  # noqa: F401  (imported before the first partner request: event emission is instant)

        from orchestrator.prefect.warm import WarmRunner  # imports Prefect: after prepare_prefect_env

        specs = read_deployments()
        deployments = runner_deployments(specs)
        for spec, deployment in list(zip(specs, deployments, strict=True)):
            if spec.name in WARM_DEPLOYMENTS:
                deployments.remove(deployment)
                # apply() registers the deployment with its schedules, event triggers and concurrency limit.
                warm.append(WarmRunner(deployment.apply(), load_flow(spec)).start())
        if web:
            web_server = start_web(host, port)
            print(f"Application web sur http://{host}:{port} (santé: /healthz)", flush=True)
        print("Déploiements servis: " + ", ".join(s.name for s in specs), flush=True)
        # The operators' alerts: the triggers of notify-operators become automations when it is served.
        print(alerts_line(sum(len(s.triggers) for s in specs if s.name == ALERTS_DEPLOYMENT),
                          settings.operator_emails), flush=True)
        from prefect import serve as prefect_serve  # after prepare_prefect_env (PREFECT_HOME)

        signal.signal(signal.SIGTERM, _raise_interrupt)
        prefect_serve(*deployments, limit=limit, print_starting_message=False)
    except KeyboardInterrupt:
        pass
    finally:
        if web_server is not None:
            web_server.should_exit = True
        for runner in warm:
            runner.stop()
        if local is not None:
            local.stop()
            forget_api_url(settings.home, local.api_url)


API_URL_FILE = "prefect-api-url"  # under DECLIC_HOME: where `declic status` finds the server `declic serve` runs


def write_api_url(home: Path, url: str) -> None:
    """Note the local Prefect server's API URL under DECLIC_HOME while `declic serve` runs."""
    home.mkdir(parents=True, exist_ok=True)
    (home / API_URL_FILE).write_text(url + "\n", encoding="utf-8")


def read_api_url(home: Path) -> str | None:
    """The API URL `declic serve` noted under DECLIC_HOME, None when it does not run (or never ran) here."""
    try:
        return (home / API_URL_FILE).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def forget_api_url(home: Path, url: str) -> None:
    """Remove the note when `declic serve` stops (only its own: another serve may have written a newer one)."""
    if read_api_url(home) == url:
        with contextlib.suppress(OSError):
            (home / API_URL_FILE).unlink()


def plan_warm(deployment: str = "plan/plan") -> None:
    """Run one deployment's flow runs warm against a shared Prefect API until interrupted (scale-out).

    The scale-out counterpart of `declic serve`'s warm planning: workers still may take plan runs (they
    poll every second); whoever claims a run first executes it, so this process only makes planning start
    sooner, and a cluster without it still plans.
    """
    if not os.environ.get("PREFECT_API_URL"):
        raise RuntimeError("PREFECT_API_URL is not set: `declic planner` joins a running Prefect server")
    prepare_prefect_env(get_settings().home)
    from prefect.client.orchestration import get_client  # after prepare_prefect_env (PREFECT_HOME)
    from prefect.exceptions import ObjectNotFound

    from orchestrator.prefect.warm import WarmRunner  # imports Prefect: after prepare_prefect_env

    with get_client(sync_client=True) as client:
        try:
            found = client.read_deployment_by_name(deployment)
        except ObjectNotFound as exc:
            raise RuntimeError(f"no deployment {deployment} on {os.environ['PREFECT_API_URL']}: "
                               "run `prefect deploy --all` first") from exc
    flows = {f"{flow.name}/{spec.name}": flow for spec in read_deployments() if (flow := load_flow(spec))}
    runner = WarmRunner(found.id, flows[deployment]).start()
    print(f"Planification à chaud pour {deployment} sur {os.environ['PREFECT_API_URL']}", flush=True)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()


def _raise_interrupt(*_args) -> None:
    raise KeyboardInterrupt
