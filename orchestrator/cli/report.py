"""`declic report` (a campaign's funnel, uplift and breakdowns as a table, JSON or CSV) and
`declic users` (dashboard accounts). Mounted on the main CLI by `mount(app)`."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core import labels
from orchestrator.core.stats import fr_cell, report_dict, table_csv
from store.accounts import AccountError, add_user, parse_territory, set_user_active
from store.planning import campaign_overlaps, parse_holdout, set_territory_holdout
from store.report import campaign_by_name, refresh_rollup
from store.report import report as build

console = Console()
users_app = typer.Typer(
    help="Comptes du tableau de bord (opérateurs, collectivités, ambassadeurs).", no_args_is_help=True
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def report(
    campaign: Annotated[str | None, typer.Option("--campaign", "-c", help="nom de la campagne")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table, json ou csv")] = Format.table,
    table: Annotated[
        str | None, typer.Option(help="ce tableau seulement (funnel, uplift, by_commune_code...)")
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="calculer maintenant au lieu de lire les agrégats de la nuit")
    ] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="recalculer d'abord les agrégats (tâche de nuit)")
    ] = False,
) -> None:
    """L'entonnoir d'une campagne, son effet mesuré face au groupe témoin, ses variantes et ses détails."""
    app = bootstrap()
    if refresh:
        with app.transaction() as unit:
            target = campaign_by_name(unit.conn, campaign) if campaign else None
        if campaign and target is None:
            console.print(f"[red]Campagne inconnue : {campaign}[/red]")
            raise typer.Exit(1)
        written = refresh_rollup(app.engine, [target.id] if target else None, now=app.now())
        console.print(f"Agrégats recalculés : {written} lignes.", highlight=False)
        if not campaign:
            return
    if not campaign:
        console.print("[red]Donnez --campaign NOM (ou --refresh pour recalculer tous les agrégats).[/red]")
        raise typer.Exit(2)
    with app.transaction() as unit:
        row = campaign_by_name(unit.conn, campaign)
    if row is None:
        console.print(f"[red]Campagne inconnue : {campaign}[/red]")
        raise typer.Exit(1)
    result = build(app.engine, row, live=live)
    tables = [t for t in result.tables if table is None or t.key == table]
    if table and not tables:
        known = ", ".join(t.key for t in result.tables)
        console.print(f"[red]Tableau inconnu : {table} (connus : {known})[/red]")
        raise typer.Exit(2)
    if fmt is Format.json:
        data = report_dict(result)
        if table:
            data["tables"] = {k: v for k, v in data["tables"].items() if k == table}
        print(json.dumps(data, ensure_ascii=False, indent=2))
        return
    if fmt is Format.csv:
        for i, t in enumerate(tables):
            if len(tables) > 1:
                print(("\n" if i else "") + f"# {t.key}: {t.title}")
            print(table_csv(t), end="")
        return
    zone = app.zone
    source = ("agrégats du " + labels.datetime_fr(result.as_of, zone) if result.source == "rollup" and result.as_of
              else "calcul en direct")
    console.print(f"[bold]{result.title}[/bold] ({result.campaign}, {labels.label('campaign_status', result.status)})"
                  f" — {source}", highlight=False)
    for t in tables:
        rich = RichTable(title=t.title, title_justify="left")
        # A person reads the name ("Bâtiment", "Rennes Métropole"), not the code beside it (a family code, an EPCI
        # SIREN): the code stays in --format json and csv.
        columns = [(key, header) for key, header in t.columns
                   if not (key == "value" and any(k == "label" for k, _ in t.columns))]
        for key, header in columns:
            rich.add_column(header, justify="left" if t.kinds.get(key, "text") == "text" else "right")
        for r in t.rows:
            rich.add_row(*(fr_cell(r.get(key), t.kinds.get(key, "text")) for key, _ in columns))
        console.print(rich)


@users_app.command("add")
def users_add(
    email: str,
    name: Annotated[str, typer.Option(help="nom affiché dans le tableau de bord")],
    role: Annotated[str, typer.Option(
        help="operator (opérateur), collectivite (collectivité) ou ambassador (ambassadeur)")],
    territory: Annotated[str, typer.Option(
        help="territoire d'une collectivité : departement:35, epci:243500139 ou un nom (« Rennes Métropole », "
             "« Ille-et-Vilaine », « Bruz »), séparés par des virgules")] = "",
    assignee: Annotated[str | None, typer.Option(help="file d'appels d'un ambassadeur, ex. « ambassador:7 »")]
    = None,
    password: Annotated[
        str,
        typer.Option(
            prompt="Mot de passe",
            hide_input=True,
            confirmation_prompt="Le même mot de passe, une seconde fois",
            help="10 caractères au moins (demandé s'il manque)",
        ),
    ] = "",
) -> None:
    """Créer un compte du tableau de bord (ou changer son mot de passe, son rôle et son territoire)."""
    try:
        app = bootstrap()
        user_id = add_user(
            app.engine,
            email=email,
            name=name,
            password=password,
            role=role,
            territory=parse_territory(territory),
            assignee=assignee,
            now=app.now(),
        )
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"Compte {email.lower()} prêt (n° {user_id}, rôle {labels.label('role', role)}).", highlight=False)


@users_app.command("disable")
def users_disable(email: str) -> None:
    """Désactiver un compte : il ne peut plus se connecter et ses sessions ouvertes se ferment aussitôt."""
    _set_active(email, False, "désactivé : ses sessions sont fermées et il ne peut plus se connecter")


@users_app.command("enable")
def users_enable(email: str) -> None:
    """Réactiver un compte désactivé (il se reconnecte)."""
    _set_active(email, True, "réactivé : il peut de nouveau se connecter")


def _set_active(email: str, active: bool, what: str) -> None:
    if not set_user_active(bootstrap().engine, email, active):
        console.print(f"[red]Aucun compte {email.strip().lower()}.[/red]", highlight=False)
        raise typer.Exit(2)
    console.print(f"Compte {email.strip().lower()} {what}.", highlight=False)


def print_overlaps(engine, spec, campaign_id: int | None, today: dt.date) -> None:
    """Say which other campaigns overlap this one (same trigger, intersecting territory and segment) and who
    speaks to the businesses they share (`campaigns apply`), as of `today` (the local date)."""


    with engine.connect() as conn:
        found = campaign_overlaps(conn, spec, campaign_id, today)
    for o in found:
        triggers = ", ".join(labels.label("trigger", t) for t in o["triggers"])
        console.print(f"Chevauchement avec {o['name']} ({o['owner']}) : {o['businesses']} entreprises dans les "
                      f"deux segments aujourd'hui, déclencheurs {triggers} ; {o['outcome']}.",
                      highlight=False)


territories_app = typer.Typer(help="Territoires : groupes témoins globaux.", no_args_is_help=True)


@territories_app.command("holdout")
def territories_holdout(
    place: Annotated[str, typer.Argument(help="territoire, ex. departement:35, epci:243500139")],
    share: Annotated[str, typer.Argument(help="part tenue à l'écart de toute campagne pendant un an, ex. 2%")],
) -> None:
    """Fixer le groupe témoin global d'un territoire : une petite part de ses entreprises qu'aucune campagne ne
    contacte pendant un an, pour mesurer l'effet global du programme ; 0% le supprime."""


    try:
        level, code, percent = parse_holdout(place, share)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc
    with bootstrap().transaction() as unit:
        set_territory_holdout(unit.conn, level, code, percent, f"cli:{getpass.getuser()}", unit.now)
    if percent:
        console.print(f"Groupe témoin global de {level} {code} : {percent:g} % des entreprises, qu'aucune "
                      "campagne ne contacte pendant un an.", highlight=False)
    else:
        console.print(f"Groupe témoin global de {level} {code} supprimé.", highlight=False)


def mount(app: typer.Typer) -> None:
    """Add `report`, `users` and `territories` to the main CLI."""
    app.command("report")(report)
    app.add_typer(users_app, name="users")
    app.add_typer(territories_app, name="territories")
