"""The `declic` command line (Typer + Rich).

Sub-commands of other rooms (ingest, templates, segments, feeds, report...) are Typer apps mounted here.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.settings import get_settings, prepare_prefect_env
from orchestrator.cli import barometer as cli_barometer
from orchestrator.cli import feeds as cli_feeds
from orchestrator.cli import ingest as cli_ingest
from orchestrator.cli import intermediaries as cli_intermediaries
from orchestrator.cli import journeys as cli_journeys
from orchestrator.cli import lists as cli_lists
from orchestrator.cli import messages as cli_messages
from orchestrator.cli import privacy as cli_privacy
from orchestrator.cli import report as cli_report
from orchestrator.cli import templates as cli_templates
from orchestrator.cli.errors import CliError, DeclicGroup, french_cli, pydantic_fr, safe_url, yaml_lines, yaml_problem
from orchestrator.cli.report import print_overlaps
from orchestrator.core import labels
from orchestrator.core.campaign_spec import load_spec, spec_warnings
from orchestrator.core.stats import fr_int
from segments.territory import TerritoryError, parse_places, places_scope
from store.admin import add_partner, apply_campaign, revoke_partner, set_campaign_status
from store.migrate import upgrade
from store.reference import load_reference
from triggers.model import EVENT_TYPES

french_cli()
app = typer.Typer(help="Déclic : des messages simples, en français, aux très petites entreprises, au bon moment.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False, cls=DeclicGroup)
partners_app = typer.Typer(help="Partenaires qui envoient des événements (BGE, Adie, URSSAF, CMA...).",
                           no_args_is_help=True)
campaigns_app = typer.Typer(help="Campagnes d'une collectivité.", no_args_is_help=True)
app.add_typer(partners_app, name="partners")
app.add_typer(campaigns_app, name="campaigns")
# Each room of commands mounts itself: report and users, ingest/events/deadlines, segments/ambassadors/offers,
# messages, templates, feeds, privacy, intermediaries, barometre, and the campaigns/partners/users lists.
cli_report.mount(app)
cli_ingest.register(app)
cli_journeys.register(app, campaigns_app)
cli_messages.mount(app)
cli_templates.register(app)
cli_feeds.mount(app)
cli_privacy.mount(app)
cli_intermediaries.mount(app)
cli_barometer.mount(app)
cli_lists.mount(campaigns_app, partners_app, cli_report.users_app)
console = Console()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="en cas d'erreur, afficher la trace complète (pour un "
                                                        "développeur)")] = False,
) -> None:
    """Déclic : des messages simples, en français, aux très petites entreprises, au bon moment."""


@app.command()
def init() -> None:
    """Créer ou mettre à jour la base de données et charger les référentiels."""
    settings = get_settings()
    upgrade(settings.resolved_database_url)

    counts = load_reference(bootstrap(settings).engine)
    loaded = ", ".join(f"{_REFERENCE.get(k, labels.readable(k))} {fr_int(v)}" for k, v in counts.items())
    console.print(f"Base prête ({safe_url(settings.resolved_database_url)}). Référentiels chargés : {loaded}.",
                  highlight=False)


_REFERENCE = {"communes": "communes", "epci": "intercommunalités", "departements": "départements",
              "regions": "régions", "naf": "codes NAF", "families": "familles de métiers",
              "territories": "territoires"}


@partners_app.command("add")
def partners_add(
    name: str,
    types: Annotated[str, typer.Option(help="types d'événements autorisés, séparés par des virgules")] = "creation",
    territory: Annotated[str, typer.Option(
        help='territoire autorisé : departement:35, epci:243500139, commune:35238, region:53 ou un nom '
             '(« Rennes Métropole », « Bruz »), séparés par des virgules')] = "",
) -> None:
    """Créer un partenaire (ou renouveler son jeton) et afficher son jeton une seule fois."""
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in EVENT_TYPES]
    if unknown:
        raise CliError(f"Types d'événements inconnus : {', '.join(unknown)}.",
                       f"Types possibles : {', '.join(EVENT_TYPES)}.")

    try:
        scope = places_scope(parse_places(territory))
    except TerritoryError as exc:
        raise CliError(str(exc), "Corrigez --territory (ex. departement:35, « Rennes Métropole »).") from exc
    declic = bootstrap()
    token = add_partner(declic.engine, name, wanted, scope, now=declic.now())
    console.print(f"Partenaire {name} prêt. Jeton (affiché une seule fois) :")
    print(token)


@partners_app.command("revoke")
def partners_revoke(name: str) -> None:
    """Révoquer le jeton d'un partenaire : ses envois sont refusés (401) ; « partners add » en donne un nouveau."""
    declic = bootstrap()
    if not revoke_partner(declic.engine, name, now=declic.now()):
        console.print(f"[red]Aucun partenaire ne s'appelle {name}.[/red]", highlight=False)
        raise typer.Exit(2)
    console.print(f"Jeton du partenaire {name} révoqué : ses envois sont refusés (401) dès maintenant.",
                  highlight=False)


@campaigns_app.command("apply")
def campaigns_apply(file: Annotated[Path, typer.Argument(help="fichier YAML de la campagne")]) -> None:
    """Créer ou mettre à jour une campagne depuis un fichier YAML."""
    spec = read_campaign_file(file)
    declic = bootstrap()
    campaign_id, version, what = apply_campaign(declic.engine, spec, now=declic.now())
    said = {"created": "créée", "updated": "mise à jour", "unchanged": "inchangée"}.get(what, what)
    console.print(f"Campagne {spec.name} : {said} (n° {campaign_id}, version {version}).", highlight=False)
    for warning in spec_warnings(spec):
        console.print(f"À réécrire : {warning}.", highlight=False)

    print_overlaps(declic.engine, spec, campaign_id, declic.today())


def read_campaign_file(file: Path):
    """A campaign spec from a YAML file, or a CliError saying which field of which line is refused."""


    if not file.is_file():
        raise CliError(f"Fichier introuvable : {file}.", "Vérifiez le chemin du fichier de campagne.")
    text = file.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise CliError(f"Campagne refusée : {file} ne contient pas une campagne (des clés name, owner, "
                           "steps...).", "Partez d'un exemple : orchestrator/samples/campagne-creation-35.yaml.")
        return load_spec(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f", ligne {mark.line + 1}, colonne {mark.column + 1}" if mark is not None else ""
        raise CliError(f"Campagne refusée : {file} n'est pas un YAML lisible{where} "
                       f"({yaml_problem(exc)}).",
                       "Vérifiez l'indentation (des espaces, pas de tabulations) et les deux-points.") from exc
    except ValidationError as exc:
        raise CliError(f"Campagne refusée ({file}) :\n{pydantic_fr(exc, yaml_lines(text))}",
                       "Corrigez ces champs et relancez « declic campaigns apply ».") from exc
    except ValueError as exc:
        raise CliError(f"Campagne refusée ({file}) : {exc}", "Corrigez le fichier et relancez.") from exc


@campaigns_app.command("pause")
def campaigns_pause(name: str) -> None:
    """Mettre une campagne en pause : plus rien ne part jusqu'à sa reprise."""
    _set_status(name, "paused")


@campaigns_app.command("resume")
def campaigns_resume(name: str) -> None:
    """Reprendre une campagne en pause."""
    _set_status(name, "active")


@campaigns_app.command("end")
def campaigns_end(name: str) -> None:
    """Terminer une campagne : ses messages prévus sont annulés au moment de l'envoi."""
    _set_status(name, "ended")


def _set_status(name: str, status: str) -> None:
    declic = bootstrap()
    if not set_campaign_status(declic.engine, name, status, now=declic.now()):
        raise CliError(f"Campagne inconnue : {name}.", "« declic campaigns list » donne les noms des campagnes.")
    console.print(f"Campagne {name} : {labels.label('campaign_status', status)}.", highlight=False)


@app.command()
def plan(now: Annotated[str | None, typer.Option(help="instant de référence ISO (horloge contrôlée)")] = None
         ) -> None:
    """Lancer une fois la planification : inscrire les entreprises et prévoir leurs messages."""
    settings = get_settings()
    prepare_prefect_env(settings.home)
    from orchestrator.prefect.flows import plan_flow, run_once  # lazy: Prefect adds 1.5 s to every start-up

    _print_counts("Planification", run_once(plan_flow, now=now))


@app.command()
def dispatch(now: Annotated[str | None, typer.Option(help="instant de référence ISO (horloge contrôlée)")] = None
             ) -> None:
    """Lancer une fois l'envoi des messages arrivés à échéance."""
    settings = get_settings()
    prepare_prefect_env(settings.home)
    from orchestrator.prefect.flows import dispatch_flow, run_once  # lazy: Prefect adds 1.5 s to every start-up

    _print_counts("Envoi", run_once(dispatch_flow, now=now))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="adresse d'écoute du site")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port du site (API partenaires, pages, tableau de bord)")] = 8000,
    prefect_port: Annotated[int, typer.Option(help="port du serveur Prefect local (sans PREFECT_API_URL)")] = 4200,
    web: Annotated[bool, typer.Option(help="lancer aussi le site (API partenaires, pages, tableau de bord)")] = True,
    limit: Annotated[int | None, typer.Option(help="exécutions simultanées au plus (défaut : sans limite)")] = None,
) -> None:
    """Tout faire tourner sur une machine : le site et chaque déploiement de prefect.yaml."""
    from orchestrator.prefect.serve import serve as serve_all  # lazy: Prefect and the web app, 2 s of start-up

    if web:
        _port_free(host, port, "--port")
    if not os.environ.get("PREFECT_API_URL"):
        _port_free("127.0.0.1", prefect_port, "--prefect-port")

    serve_all(host=host, port=port, prefect_port=prefect_port, web=web, limit=limit)


@app.command()
def planner(
    deployment: Annotated[str, typer.Option(help="flow/déploiement dont exécuter les lancements à chaud")]
    = "plan/plan",
) -> None:
    """Planifier à chaud pour un cluster (PREFECT_API_URL) : les lots des partenaires planifiés en une seconde."""
    from orchestrator.prefect.serve import plan_warm  # lazy: Prefect adds 1.5 s to every start-up

    try:
        plan_warm(deployment)
    except RuntimeError as exc:
        raise CliError(f"Planification à chaud impossible : {exc}.") from exc


@app.command()
def status(json_out: Annotated[bool, typer.Option("--json", help="sortie JSON (clés stables, en anglais)")]
           = False) -> None:
    """Messages en attente, à envoyer et en échec par canal, canaux non configurés, flux et dernières exécutions."""
    from orchestrator.cli.status import collect, render  # lazy: status asks Prefect's client (1 s of start-up)

    settings = get_settings()
    prepare_prefect_env(settings.home)
    declic = bootstrap(settings)
    report = collect(declic, declic.now())
    if json_out:
        print(json.dumps(report, ensure_ascii=False, default=str))
    else:
        render(report, console, declic.zone)


@app.command()
def demo(
    businesses: Annotated[int, typer.Option(help="nombre de TPE fictives à créer")] = 2000,
    events: Annotated[int, typer.Option(help="événements de création envoyés par l'API")] = 250,
    departement: Annotated[str, typer.Option(help="département de la population fictive")] = "35",
    json_out: Annotated[bool, typer.Option("--json", help="résumé en JSON (clés stables, en anglais)")] = False,
) -> None:
    """La démonstration de bout en bout, sans rien installer d'autre (base SQLite neuve, serveur SMTP local)."""
    from orchestrator.cli.demo import run_demo  # lazy: the demo loads Prefect and the web app (2.5 s)

    summary = run_demo(businesses=businesses, events=events, departement=departement, console=console)
    if json_out:
        print(json.dumps(summary, ensure_ascii=False))
    if summary["sent"] <= 0:
        raise typer.Exit(1)


def _print_counts(title: str, counts: dict[str, int]) -> None:
    table = Table(title=title)
    table.add_column("Quoi")
    table.add_column("Nombre", justify="right")
    for key, value in sorted(counts.items(), key=lambda kv: labels.run_count(kv[0])):
        table.add_row(labels.run_count(key).capitalize(), fr_int(value))
    console.print(table if counts else f"{title}: rien à faire.")


def _port_free(host: str, port: int, option: str) -> None:

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers do: a busy port, not TIME_WAIT
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise CliError(f"Le port {port} ({host}) est déjà utilisé par un autre programme.",
                           f"Arrêtez-le, ou choisissez un autre port avec {option}.") from exc



def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
