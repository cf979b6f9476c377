"""`declic barometre --territory departement:35 [--json | --csv]`: the territory barometer, the same figures as
the dashboard page `/tableau/barometre?territoire=...`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table as RichTable

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.barometer import barometer_csv, barometer_dict
from orchestrator.core.stats import fr_cell, fr_int
from store.accounts import AccountError, parse_territory
from store.barometer import barometer

console = Console()


def barometre(
    territory: Annotated[str, typer.Option("--territory", "-t", help="ex. departement:35, epci:243500139, « "
        "Rennes Métropole »")],
    as_json: Annotated[bool, typer.Option("--json", help="sortie JSON (clés stables, en anglais)")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="le CSV de l'export du tableau de bord")] = False,
) -> None:
    """Maturité numérique des entreprises d'un territoire par famille de métiers, intercommunalité, commune et
    trimestre (intervalles à 95 %)."""

    try:
        place = parse_territory(territory)
    except AccountError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from exc
    if not place:
        console.print("[red]Donnez un territoire, ex. --territory departement:35.[/red]", highlight=False)
        raise typer.Exit(2)
    result = barometer(bootstrap().engine, place, territory)
    if as_json:
        print(json.dumps(barometer_dict(result), ensure_ascii=False, indent=2))
        return
    if as_csv:
        print(barometer_csv(result), end="")
        return
    console.print(f"[bold]Baromètre numérique : {result.territory_label}[/bold] — {fr_int(result.answered)} "
                  f"entreprises au niveau connu sur {fr_int(result.businesses)} ; groupes de moins de "
                  f"{result.min_count} masqués.", highlight=False)
    for t in result.tables:
        rich = RichTable(title=t.title, title_justify="left")
        for key, header in t.columns:
            rich.add_column(header, justify="left" if t.kinds.get(key, "text") == "text" else "right")
        for r in t.rows:
            rich.add_row(*(fr_cell(r.get(key), t.kinds.get(key, "text")) for key, _ in t.columns))
        console.print(rich)


def mount(app: typer.Typer) -> None:
    """Add `barometre` to the main CLI."""
    app.command("barometre")(barometre)
