"""`declic intermediaries import FILE` and `declic intermediaries clients FILE` (issue 16, point 1).

The registry of intermediaries (accounting firms, CMA/CCI and bank advisers, associations) and the businesses each
serves, read like `declic ambassadors import` reads ambassadors: line-level rejects with the line, the field and the
reason, in French. The formats are in `store.intermediaries`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.app.bootstrap import bootstrap
from orchestrator.cli.journeys import _print_rejects, console
from store.intermediaries import import_clients, import_intermediaries

intermediaries_app = typer.Typer(
    help="Intermédiaires: cabinets comptables, conseillers CMA/CCI et bancaires, associations qui relaient.",
    no_args_is_help=True)


def mount(app: typer.Typer) -> None:
    """Mount `intermediaries` on the main app."""
    app.add_typer(intermediaries_app, name="intermediaries")


def _readable(file: Path) -> None:

    if not file.is_file():
        console.print(f"[red]Fichier introuvable: {file}[/red]", highlight=False)
        raise typer.Exit(2)


@intermediaries_app.command("import")
def intermediaries_import(file: Path) -> None:
    """Importer (ou mettre à jour) les intermédiaires d'un fichier CSV (key;name;kind;email;phone;commune;territory)."""
    _readable(file)
    app = bootstrap()
    imported, rejects = import_intermediaries(app.engine, file, now=app.now())
    _print_rejects("Intermédiaires", imported, rejects)
    if rejects and not imported:
        raise typer.Exit(2)


@intermediaries_app.command("clients")
def intermediaries_clients(
    file: Path,
    source: Annotated[str | None, typer.Option(help="d'où viennent les liens (un partenaire); défaut: le nom du "
                                                    "fichier")] = None,
) -> None:
    """Importer les entreprises que sert chaque intermédiaire (intermediary;siret;source;date)."""
    _readable(file)
    app = bootstrap()
    imported, rejects = import_clients(app.engine, file, source_name=source, today=app.today(), now=app.now())
    _print_rejects("Liens intermédiaire-entreprise", imported, rejects)
    if rejects and not imported:
        raise typer.Exit(2)
