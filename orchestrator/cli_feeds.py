"""`declic feeds add|list|pause|resume|remove|watch`: the URLs Déclic watches on its own."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

feeds_app = typer.Typer(
    help="Watched feeds: partner files, BODACC and Sirene APIs, fetched on schedule.", no_args_is_help=True
)
console = Console()


def _engine():
    from orchestrator.settings import get_settings
    from store.db import get_engine

    return get_engine(get_settings().resolved_database_url)


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/red]")
    raise typer.Exit(1)


@feeds_app.command("add")
def add(
    name: str,
    format: Annotated[
        str, typer.Option("--format", help="sirene|bodacc|partner-csv|partner-json|bodacc-api|sirene-api")
    ],
    url: Annotated[str | None, typer.Option(help="address to fetch (built-in APIs: public endpoint)")] = None,
    partner: Annotated[str | None, typer.Option(help="partner owning the events (partner formats)")] = None,
    every: Annotated[str, typer.Option(help="period between fetches: 30m, 6h, 1d")] = "1d",
    token_env: Annotated[
        str | None,
        typer.Option(
            help="NAME of the environment variable holding a bearer token (the token itself is never stored)"
        ),
    ] = None,
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="the feed is on this machine or a private network (otherwise only public addresses are fetched)",
        ),
    ] = False,
) -> None:
    """Register a feed; it is fetched at the next run of `watch-feeds`, then every period."""
    from store.feeds import FeedError, add_feed, parse_period

    try:
        feed = add_feed(
            _engine(),
            name=name,
            format=format,
            url=url,
            partner=partner,
            every_seconds=parse_period(every),
            token_env=token_env,
            local=local,
        )
    except FeedError as exc:
        _fail(str(exc))
    info = feed.describe()
    where = " (réseau local autorisé)" if feed.local else ""
    console.print(f"Flux {feed.name} enregistré: {feed.format}, {info['every']}, {feed.url}{where}")


@feeds_app.command("list")
def list_(json_out: Annotated[bool, typer.Option("--json", help="print as JSON")] = False) -> None:
    """Every feed and its state in plain words."""
    from store.feeds import list_feeds

    feeds = [f.describe() for f in list_feeds(_engine())]
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
    from store.feeds import FeedError, set_status

    try:
        set_status(_engine(), name, status)
    except FeedError as exc:
        _fail(str(exc))
    console.print(f"Flux {name}: {words}")


@feeds_app.command("pause")
def pause(name: str) -> None:
    """Stop fetching a feed until it is resumed."""
    _status(name, "paused", "en pause")


@feeds_app.command("resume")
def resume(name: str) -> None:
    """Fetch a paused feed again (at the next run)."""
    _status(name, "active", "repris, relevé au prochain passage")


@feeds_app.command("local")
def local_(
    name: str,
    off: Annotated[bool, typer.Option("--off", help="forbid the local network again")] = False,
) -> None:
    """Let a feed fetch from this machine or a private network (refused by default), or forbid it again."""
    from store.feeds import FeedError, set_local

    try:
        set_local(_engine(), name, not off)
    except FeedError as exc:
        _fail(str(exc))
    words = "adresses publiques seulement" if off else "réseau local autorisé"
    console.print(f"Flux {name}: {words}")


@feeds_app.command("remove")
def remove(name: str) -> None:
    """Forget a feed (the events it brought stay)."""
    from store.feeds import FeedError, remove_feed

    try:
        remove_feed(_engine(), name)
    except FeedError as exc:
        _fail(str(exc))
    console.print(f"Flux {name} supprimé.")


@feeds_app.command("watch")
def watch(only: Annotated[str | None, typer.Option(help="only bodacc or sirene feeds")] = None) -> None:
    """Fetch every due feed now, in this process (the `watch-feeds` deployment does it on schedule)."""
    from orchestrator.bootstrap import bootstrap
    from orchestrator.feeds import watch_due_feeds

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
