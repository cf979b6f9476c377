"""`declic feeds add|list|pause|resume|remove|watch`: the URLs Déclic watches on its own."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.feeds import watch_due_feeds
from store.feeds import FeedError, add_feed, list_feeds, parse_period, remove_feed, set_local, set_status

feeds_app = typer.Typer(
    help="Flux surveillés : fichiers des partenaires, API BODACC et Sirene, relevés à intervalle "
        "régulier.", no_args_is_help=True
)
console = Console()


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


@feeds_app.command("add")
def add(
    name: str,
    format: Annotated[
        str, typer.Option("--format", help="sirene|bodacc|partner-csv|partner-json|bodacc-api|sirene-api")
    ],
    url: Annotated[str | None, typer.Option(help="adresse à relever (API intégrées : adresse publique)")] = None,
    partner: Annotated[str | None, typer.Option(help="partenaire à qui sont les événements (formats "
        "partenaire)")] = None,
    every: Annotated[str, typer.Option(help="intervalle entre deux relevés : 30min, 6h, 1d")] = "1d",
    token_env: Annotated[
        str | None,
        typer.Option(
            help="NOM de la variable d'environnement qui contient le jeton (le jeton lui-même n'est jamais enregistré)"
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="le flux est sur cette machine ou un réseau privé (sinon seules les adresses publiques sont relevées)",
        ),
    ] = False,
) -> None:
    """Enregistrer un flux : relevé au prochain passage de « watch-feeds », puis à chaque intervalle."""
    try:
        app = bootstrap()
        feed = add_feed(
            app.engine,
            name=name,
            format=format,
            url=url,
            partner=partner,
            every_seconds=parse_period(every),
            token_env=token_env,
            local=local,
            now=app.now(),
        )
    except FeedError as exc:
        _fail(str(exc))
    info = feed.describe()
    where = " (réseau local autorisé)" if feed.local else ""
    console.print(f"Flux {feed.name} enregistré: {feed.format}, {info['every']}, {feed.url}{where}")


@feeds_app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="sortie JSON (clés stables, en "
    "anglais)")] = False) -> None:
    """Chaque flux et son état, en clair."""
    feeds = [f.describe() for f in list_feeds(bootstrap().engine)]
    if json_out:
        print(json.dumps(feeds, ensure_ascii=False))
        return
    if not feeds:
        console.print("Aucun flux (declic feeds add NOM --url URL --format ...).")
        return
    table = Table(title="Flux surveillés")
    for col in (
        "flux",
        "format",
        "période",
        "état",
        "dernier essai",
        "dernier succès",
        "événements",
        "dernier résultat",
        "dernière erreur",
    ):
        table.add_column(col)
    for f in feeds:
        table.add_row(
            f["name"],
            f["format"],
            f["every"],
            f["state"],
            f["last_fetch"] or "-",
            f["last_success"] or "-",
            str(f["events"]),
            f["last_outcome"] or "-",
            f["last_error"] or "-",
        )
    console.print(table)


def _status(name: str, status: str, words: str) -> None:

    try:
        app = bootstrap()
        set_status(app.engine, name, status, now=app.now())
    except FeedError as exc:
        _fail(str(exc))
    console.print(f"Flux {name}: {words}")


@feeds_app.command("pause")
def pause(name: str) -> None:
    """Ne plus relever un flux jusqu'à sa reprise."""
    _status(name, "paused", "en pause")


@feeds_app.command("resume")
def resume(name: str) -> None:
    """Relever de nouveau un flux en pause (au prochain passage)."""
    _status(name, "active", "repris, relevé au prochain passage")


@feeds_app.command("local")
def local_(
    name: str,
    off: Annotated[bool, typer.Option("--off", help="interdire de nouveau le réseau local")] = False,
) -> None:
    """Autoriser un flux à relever sur cette machine ou un réseau privé (refusé par défaut), ou l'interdire de
    nouveau."""

    try:
        set_local(bootstrap().engine, name, not off)
    except FeedError as exc:
        _fail(str(exc))
    words = "adresses publiques seulement" if off else "réseau local autorisé"
    console.print(f"Flux {name}: {words}")


@feeds_app.command("remove")
def remove(name: str) -> None:
    """Oublier un flux (les événements qu'il a apportés restent)."""
    try:
        remove_feed(bootstrap().engine, name)
    except FeedError as exc:
        _fail(str(exc))
    console.print(f"Flux {name} supprimé.")


@feeds_app.command("watch")
def watch(only: Annotated[str | None, typer.Option(help="seulement les flux bodacc ou sirene")] = None) -> None:
    """Relever maintenant chaque flux arrivé à échéance, dans ce processus (le déploiement « watch-feeds » le fait
    à heure fixe)."""

    outcomes = watch_due_feeds(bootstrap(), only=only)
    for o in outcomes:
        console.print(f"{o['feed']}: {o['state']}")
    if not outcomes:
        console.print("Aucun flux à relever pour l'instant.")
    if any(o["failed"] for o in outcomes):
        raise typer.Exit(1)


def mount(app: typer.Typer) -> None:
    """Add `feeds` to the main command."""
    app.add_typer(feeds_app, name="feeds")
