"""`declic templates lint|preview`: the plain-language linter and a rendered message for a real business."""

from __future__ import annotations

from typing import Annotated

import typer

templates_app = typer.Typer(help="Message templates: lint them, preview them for a business.", no_args_is_help=True)


@templates_app.command("lint")
def lint(paths: Annotated[list[str] | None, typer.Argument(help="files to lint (default: every shipped template)")]
         = None) -> None:
    """Report jargon, long sentences, readability, SMS length and missing mandatory elements."""
    from templates.lint import main as lint_main

    raise typer.Exit(lint_main(paths or None))


@templates_app.command("preview")
def preview(
    template: Annotated[str, typer.Argument(help="channel/trigger (e.g. email/creation) or a template file name")],
    business: Annotated[str, typer.Option("--business", help="SIRET of a business in the store")],
    campaign: Annotated[str | None, typer.Option(help="campaign whose sender and contact to use")] = None,
) -> None:
    """Show the message a business would receive."""
    from sqlalchemy import select

    from orchestrator.campaign_spec import CampaignSpec
    from orchestrator.planner import Candidate, message_context
    from orchestrator.settings import get_settings
    from store.db import get_engine
    from store.models import Business, Campaign
    from store.planning import business_view
    from templates.preview import preview_text, sample_context
    from templates.render import library

    engine = get_engine(get_settings().resolved_database_url)
    b, c = Business.__table__, Campaign.__table__
    with engine.connect() as conn:
        row = conn.execute(select(b).where(b.c.siret == business.replace(" ", ""))).first()
        spec_row = conn.execute(select(c.c.spec).where(c.c.name == campaign)).first() if campaign else None
    if row is None:
        typer.echo(f"Entreprise inconnue : {business}", err=True)
        raise typer.Exit(1)
    if campaign and spec_row is None:
        typer.echo(f"Campagne inconnue : {campaign}", err=True)
        raise typer.Exit(1)
    view = business_view(row)
    parts = template.removesuffix(".j2").split("/")
    channel, trigger = parts[0], parts[1] if len(parts) > 1 else "creation"
    lib = library()
    name = template if template.endswith(".j2") else lib.resolve(channel, trigger, view.family or "autre")
    context = sample_context(view.family or "autre", trigger)
    if spec_row is not None:
        import datetime as dt

        spec = CampaignSpec.model_validate(spec_row.spec)
        context.update(message_context(spec, view, Candidate(0, trigger, dt.date.today(), view)))
    else:
        context["business"] = message_context_business(view)
    typer.echo(preview_text(lib, name, context))


def message_context_business(view) -> dict:
    """The business part of a render context."""
    return {"siret": view.siret, "name": view.name, "metier": view.metier, "family": view.family, "naf": view.naf_code,
            "family_label": view.family_label, "commune": view.commune_nom, "postal_code": view.postal_code}


def register(app: typer.Typer) -> None:
    """Mount `templates` on the main app."""
    app.add_typer(templates_app, name="templates")
