"""`declic privacy export|erase|purge|register`: personal data of a business, on request. Mounted by `mount(app)`."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from orchestrator.app import privacy
from orchestrator.app.bootstrap import bootstrap

console = Console()
privacy_app = typer.Typer(help="Données personnelles : export, effacement, durée de conservation, registre.",
                          no_args_is_help=True)


def _app():

    return bootstrap()


def _fail(message: str) -> None:
    console.print(f"[red]{message}[/red]", highlight=False)
    raise typer.Exit(2)


def cli_actor() -> str:
    """Who runs a command, for the audit trail: the system user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@privacy_app.command("export")
def export(
    siret: str,
    format: Annotated[str, typer.Option("--format", help="json ou pdf")] = "json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="fichier à écrire (par défaut : dans le "
        "dossier courant)")] = None,
) -> None:
    """Tout ce qui est gardé sur une entreprise et ses contacts (droit d'accès), en JSON ou en un court PDF."""
    if format not in ("json", "pdf"):
        _fail("Format inconnu : json ou pdf.")
    app = _app()
    try:
        data = privacy.export_business(app, siret, actor=cli_actor())
    except privacy.PrivacyError as exc:
        _fail(str(exc))
    path = output or Path(f"donnees-{data['siret']}.{format}")
    if format == "json":
        path.write_text(privacy.export_json(data) + "\n", encoding="utf-8")
    else:
        path.write_bytes(privacy.export_pdf(data))
    console.print(f"Export écrit dans {path}.", highlight=False)


@privacy_app.command("erase")
def erase(
    siret: str,
    reason: Annotated[str, typer.Option("--reason", help="pourquoi (une demande par e-mail du..., une opposition...)")],
) -> None:
    """Effacer partout les données personnelles d'une entreprise et de ses contacts ; garder leurs empreintes pour
    ne plus la contacter."""

    try:
        done = privacy.erase(_app(), siret, reason=reason, actor=cli_actor())
    except privacy.PrivacyError as exc:
        _fail(str(exc))
    tables = ", ".join(f"{name} {count}" for name, count in sorted(done.rows.items())) or "rien"
    console.print(f"Données effacées (lignes modifiées : {tables}). {done.hashes} empreinte(s) gardée(s) dans la "
                  "liste d'opposition : cette entreprise ne sera plus contactée.", highlight=False)


@privacy_app.command("purge")
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="montrer seulement ce qui serait effacé")] = False,
    now: Annotated[str | None, typer.Option(help="instant de référence ISO (horloge contrôlée)")] = None,
) -> None:
    """Appliquer maintenant les durées de conservation (le flow de nuit privacy-retention fait de même)."""



    clock = (lambda: dt.datetime.fromisoformat(now)) if now else None
    counts = privacy.purge(bootstrap(clock=clock), dry_run=dry_run, actor=cli_actor(), role="cli")
    if not counts:
        console.print("Rien à effacer : tout est dans les durées de conservation.")
        return
    table = Table(title="À effacer (simulation)" if dry_run else "Effacé")
    for column in ("quoi", "porteur", "lignes"):
        table.add_column(column)
    for name, by_owner in counts.items():
        for owner, n in by_owner.items():
            table.add_row(privacy.TABLE_LABELS.get(name, name), owner, str(n))
    console.print(table)


@privacy_app.command("register")
def register(
    owner: Annotated[str, typer.Option("--owner", help="le porteur des campagnes, tel que nommé dans leurs fichiers")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="fichier Markdown (par défaut : "
        "affiché)")] = None,
) -> None:
    """La fiche du registre des traitements (art. 30) de chaque campagne d'un porteur, en Markdown."""
    try:
        text = privacy.register(_app(), owner)
    except privacy.PrivacyError as exc:
        _fail(str(exc))
    if output is None:
        print(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"Registre écrit dans {output}.", highlight=False)


def audit(
    since: Annotated[str | None, typer.Option("--since", help="depuis cette date (2026-12-01) ou cet instant "
        "ISO")] = None,
    user: Annotated[str | None, typer.Option("--user", help="seulement ce compte (son e-mail, ou cli:NOM)")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="sortie JSON (clés stables, en anglais)")] = False,
) -> None:
    """Qui a consulté, exporté ou effacé des données personnelles : le journal, le plus récent d'abord."""



    app, start = _app(), None
    if since:
        try:
            start = dt.datetime.fromisoformat(since)
        except ValueError:
            _fail(f"Date illisible : « {since} ». Exemple : 2026-12-01.")
        start = start if start.tzinfo else start.replace(tzinfo=app.zone)
    rows = privacy.audit_entries(app, since=start, user=user)
    if json_out:
        print(json.dumps(rows, ensure_ascii=False, default=str))
        return
    if not rows:
        console.print("Aucune entrée dans le journal pour ces critères.")
        return
    table = Table(title="Journal des accès aux données personnelles")
    for column in ("le", "qui", "rôle", "quoi", "sur", "territoire"):
        table.add_column(column)
    for r in rows:
        at = r["at"] if r["at"].tzinfo else r["at"].replace(tzinfo=dt.UTC)
        territory = ", ".join(f"{k} {' '.join(v)}" for k, v in (r["territory"] or {}).items() if v)
        table.add_row(at.astimezone(app.zone).strftime("%d/%m/%Y %H:%M"), r["actor"], r["role"],
                      r["action_label"], r["target"], territory or "-")
    console.print(table)


def mount(app: typer.Typer) -> None:
    """Add `declic privacy ...` and `declic audit` to the main command."""
    app.add_typer(privacy_app, name="privacy")
    app.command("audit")(audit)
