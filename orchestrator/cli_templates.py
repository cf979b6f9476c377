"""`declic templates lint|preview`: the plain-language linter and a rendered message for a real business."""

from __future__ import annotations

from typing import Annotated

import typer

templates_app = typer.Typer(help="Modèles de messages : les relire (clarté, longueur) et les prévisualiser pour "
    "une entreprise.", no_args_is_help=True)


@templates_app.command("lint")
def lint(paths: Annotated[list[str] | None, typer.Argument(help="fichiers à relire (par défaut : tous les "
    "modèles fournis)")]
         = None) -> None:
    """Signaler le jargon, les phrases longues, la lisibilité, la longueur des SMS et les mentions obligatoires
    manquantes."""
    from templates.lint import main as lint_main

    raise typer.Exit(lint_main(paths or None))


@templates_app.command("preview")
def preview(
    template: Annotated[str, typer.Argument(help="canal/déclencheur (ex. email/creation)")],
    business: Annotated[str, typer.Option("--business", help="SIRET d'une entreprise de la base")],
    campaign: Annotated[str | None, typer.Option(help="campagne (son nom) : montrer exactement ce qu'elle "
        "enverrait")] = None,
) -> None:
    """Afficher le message qu'une entreprise recevrait ; avec --campaign, exactement celui qui partirait."""
    from sqlalchemy import select

    from orchestrator.campaign_spec import CampaignSpec
    from orchestrator.message_preview import SAMPLE_NOTICE, leaving_message, sample_message
    from orchestrator.settings import get_settings
    from store.db import get_engine
    from store.models import Business, Campaign
    from templates.render import library

    settings = get_settings()
    engine = get_engine(settings.resolved_database_url)
    b, c = Business.__table__, Campaign.__table__
    with engine.connect() as conn:
        row = conn.execute(select(b).where(b.c.siret == business.replace(" ", ""))).first()
        campaign_row = conn.execute(select(c).where(c.c.name == campaign)).first() if campaign else None
    if row is None:
        typer.echo(f"Entreprise inconnue : {business}", err=True)
        raise typer.Exit(1)
    if campaign and campaign_row is None:
        typer.echo(f"Campagne inconnue : {campaign}", err=True)
        raise typer.Exit(1)
    parts = template.removesuffix(".j2").split("/")
    if len(parts) != 2 or not all(parts):
        typer.echo(f"Modèle illisible : {template} (attendu : canal/déclencheur, par exemple email/creation)",
                   err=True)
        raise typer.Exit(2)
    channel, trigger = parts
    lib = library()
    try:
        if campaign_row is None:
            typer.echo(SAMPLE_NOTICE)
            message = sample_message(settings, lib, row, channel, trigger)
            header: list[str] = []
        else:
            spec = CampaignSpec.model_validate(campaign_row.spec)
            leaving = leaving_message(settings, engine, lib, spec, campaign_row.id, row, channel, trigger)
            message, header = leaving.message, leaving.header_lines()
    except LookupError:
        typer.echo(f"Aucun modèle pour {channel}/{trigger}.", err=True)
        raise typer.Exit(1) from None
    lines = [f"== {message.meta.get('template', template)}", *header]
    if message.subject:
        lines.append(f"Objet : {message.subject}")
    lines.append("-" * 72)
    lines.append(message.body.rstrip("\n"))
    typer.echo("\n".join(lines))


def register(app: typer.Typer) -> None:
    """Mount `templates` on the main app."""
    app.add_typer(templates_app, name="templates")
