"""The `declic` command line (Typer + Rich).

Sub-commands of other rooms (ingest, templates, segments, feeds, report...) are Typer apps mounted here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.metrics import fr_int
from orchestrator.settings import get_settings, prepare_prefect_env

app = typer.Typer(help="Déclic: plain-French outreach to very small businesses, at the right moment.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
partners_app = typer.Typer(help="Partners that push events (BGE, Adie, URSSAF, CMA...).", no_args_is_help=True)
campaigns_app = typer.Typer(help="Campaigns of a collectivité.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
app.add_typer(campaigns_app, name="campaigns")
from orchestrator import cli_report  # noqa: E402 (report and users sub-commands)

cli_report.mount(app)
from triggers.cli import register as _register_doors  # noqa: E402  (ingest, events import, deadlines)

_register_doors(app)
from orchestrator.cli_journeys import register as _register_journeys  # noqa: E402  (segments, ambassadors...)

_register_journeys(app, campaigns_app)
from orchestrator import cli_messages  # noqa: E402  (messages show SIRET)

cli_messages.mount(app)
from orchestrator.cli_templates import register as _register_templates  # noqa: E402  (templates lint|preview)

_register_templates(app)
from orchestrator import cli_feeds  # noqa: E402  (feeds add|list|pause|resume|remove|watch)

cli_feeds.mount(app)
from orchestrator import cli_privacy  # noqa: E402  (privacy export|erase|purge|register)

cli_privacy.mount(app)
from orchestrator import cli_intermediaries  # noqa: E402  (intermediaries import|clients)

cli_intermediaries.mount(app)
from orchestrator import cli_barometer  # noqa: E402  (barometre --territory)

cli_barometer.mount(app)
console = Console()


@app.command()
def init() -> None:
    """Create or upgrade the database and load the reference data."""
    from store.migrate import upgrade
    from store.reference import load_reference

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    from store.db import get_engine

    counts = load_reference(get_engine(settings.resolved_database_url))
    console.print(f"Base prête ({_safe_url(settings.resolved_database_url)}). Référentiels: {counts}")


@partners_app.command("add")
def partners_add(
    name: str,
    types: Annotated[str, typer.Option(help="allowed event types, comma separated")] = "creation",
    territory: Annotated[str, typer.Option(help='scope as "level:code" list, e.g. departement:35')] = "",
) -> None:
    """Create a partner (or rotate its token) and print its token once."""
    from store.admin import add_partner
    from store.db import get_engine
    from triggers.model import EVENT_TYPES

    wanted = [t.strip() for t in types.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise typer.BadParameter(f"unknown event types: {', '.join(unknown)}", param_hint="--types")
    scope = [t.strip() for t in territory.split(",") if t.strip()]
    token = add_partner(get_engine(get_settings().resolved_database_url), name, wanted, scope)
    console.print(f"Partenaire {name} prêt. Jeton (affiché une seule fois) :")
    print(token)


@partners_app.command("revoke")
def partners_revoke(name: str) -> None:
    """Revoke a partner's token: its requests answer 401 from now on (`partners add` gives a new one)."""
    from store.admin import revoke_partner
    from store.db import get_engine

    if not revoke_partner(get_engine(get_settings().resolved_database_url), name):
        console.print(f"[red]Aucun partenaire ne s'appelle {name}.[/red]", highlight=False)
        raise typer.Exit(2)
    console.print(f"Jeton du partenaire {name} révoqué : ses envois sont refusés (401) dès maintenant.",
                  highlight=False)


@campaigns_app.command("apply")
def campaigns_apply(file: Path) -> None:
    """Create or update a campaign from a YAML file."""
    from pydantic import ValidationError

    from orchestrator.campaign_spec import load_spec
    from store.admin import apply_campaign
    from store.db import get_engine

    try:
        spec = load_spec(file)
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]Campagne refusée ({file}):[/red]\n{exc}")
        raise typer.Exit(2) from exc
    engine = get_engine(get_settings().resolved_database_url)
    campaign_id, version, what = apply_campaign(engine, spec)
    console.print(f"Campagne {spec.name}: {what} (id {campaign_id}, version {version})")
    from orchestrator.cli_report import print_overlaps

    print_overlaps(engine, spec, campaign_id)


@campaigns_app.command("pause")
def campaigns_pause(name: str) -> None:
    """Pause a campaign: nothing leaves until it is resumed."""
    _set_status(name, "paused")


@campaigns_app.command("resume")
def campaigns_resume(name: str) -> None:
    """Resume a paused campaign."""
    _set_status(name, "active")


@campaigns_app.command("end")
def campaigns_end(name: str) -> None:
    """End a campaign: its planned messages are cancelled at send time."""
    _set_status(name, "ended")


def _set_status(name: str, status: str) -> None:
    from store.admin import set_campaign_status
    from store.db import get_engine

    if not set_campaign_status(get_engine(get_settings().resolved_database_url), name, status):
        console.print(f"[red]Campagne inconnue: {name}[/red]")
        raise typer.Exit(1)
    console.print(f"Campagne {name}: {status}")


@app.command()
def plan(now: Annotated[str | None, typer.Option(help="ISO datetime for a controlled clock")] = None) -> None:
    """Run the planning flow once."""
    settings = get_settings()
    prepare_prefect_env(settings.home)
    from orchestrator.flows import plan_flow, run_once

    _print_counts("Planification", run_once(plan_flow, now=now))


@app.command()
def dispatch(now: Annotated[str | None, typer.Option(help="ISO datetime for a controlled clock")] = None) -> None:
    """Run the dispatch flow once."""
    settings = get_settings()
    prepare_prefect_env(settings.home)
    from orchestrator.flows import dispatch_flow, run_once

    _print_counts("Envoi", run_once(dispatch_flow, now=now))


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    prefect_port: Annotated[int, typer.Option(help="local Prefect server port (no PREFECT_API_URL)")] = 4200,
    web: Annotated[bool, typer.Option(help="also run the web app (partner API, pages, dashboard)")] = True,
    limit: Annotated[int | None, typer.Option(help="flow runs at once (default: no limit)")] = None,
) -> None:
    """Run everything on one machine: the web app and every deployment of prefect.yaml."""
    from orchestrator.serve import serve as serve_all

    serve_all(host=host, port=port, prefect_port=prefect_port, web=web, limit=limit)


@app.command()
def planner(
    deployment: Annotated[str, typer.Option(help="flow/deployment whose runs to execute warm")] = "plan/plan",
) -> None:
    """Run planning warm for a cluster (PREFECT_API_URL): partner batches are planned within a second."""
    from orchestrator.serve import plan_warm

    try:
        plan_warm(deployment)
    except RuntimeError as exc:
        console.print(f"[red]Planification à chaud impossible: {exc}[/red]")
        raise typer.Exit(2) from exc


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """Queued, due and failed messages per channel, feeds, and the last run of each flow."""
    from orchestrator.status import collect, render

    settings = get_settings()
    prepare_prefect_env(settings.home)
    report = collect(settings)
    if json_out:
        print(json.dumps(report, ensure_ascii=False, default=str))
    else:
        render(report, console)


@app.command()
def demo(
    businesses: Annotated[int, typer.Option(help="synthetic TPE to create")] = 2000,
    events: Annotated[int, typer.Option(help="creation events pushed through the API")] = 250,
    departement: Annotated[str, typer.Option(help="département of the synthetic population")] = "35",
    json_out: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
) -> None:
    """The end-to-end demo on the embedded default (fresh SQLite file, local SMTP sink, Prefect local)."""
    from orchestrator.demo import run_demo

    summary = run_demo(businesses=businesses, events=events, departement=departement, console=console)
    if json_out:
        print(json.dumps(summary, ensure_ascii=False))
    if summary["sent"] <= 0:
        raise typer.Exit(1)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("quoi")
    table.add_column("nombre", justify="right")
    for key, value in sorted(counts.items()):
        table.add_row(key, fr_int(value))
    console.print(table if counts else f"{title}: rien à faire.")


def _safe_url(url: str) -> str:
    # Never print a password.
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
