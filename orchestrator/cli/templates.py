"""`declic templates lint|preview`: the plain-language linter and a rendered message for a real business."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.app.bootstrap import bootstrap
from orchestrator.app.message_preview import SAMPLE_NOTICE, leaving_message, sample_message
from orchestrator.core.campaign_spec import CampaignSpec
from orchestrator.core.labels import count_fr
from segments.taxonomy import families
from store.lookups import business_by_siret, campaign_named
from templates.lint import lint_paths, shipped_templates

templates_app = typer.Typer(help="Modèles de messages : les relire (clarté, longueur) et les prévisualiser pour "
    "une entreprise.", no_args_is_help=True)


# The linter's severities and checks as a person reads them (templates/lint.py keeps its stable codes).
SEVERITIES = {"error": "erreur", "warning": "avertissement", "info": "mesure"}
CHECKS = {
    "JARGON": "jargon", "LONG_SENTENCE": "phrase longue", "READABILITY": "lisibilité",
    "MISSING_UNSUBSCRIBE": "lien de désinscription manquant", "MISSING_STOP": "mention STOP manquante",
    "MISSING_SENDER": "expéditeur non nommé", "MISSING_REFUSAL": "consigne de refus manquante",
    "SMS_LENGTH": "longueur du SMS", "SMS_SEGMENTS": "SMS trop long", "SMS_UCS2": "SMS : lettres hors GSM-7",
    "RAW_CODE": "code brut", "INSEE_LABEL": "libellé INSEE", "HYPE": "mot qui survend",
    "RENDER": "modèle qui ne s'affiche pas", "PARTIAL": "partie partagée",
}
_PARTIAL = "base ou partie partagée : relue à travers les messages qui l'utilisent"
_CONTEXT = re.compile(r"[\[(]([^\[\]()]*)[\])]")


def _fr_text(text: str) -> str:
    """A linter message in French words: trade family codes inside its (context) or [contexts] by their names,
    "rendered line N" as "ligne N du texte produit", decimals with a comma."""

    known = families()

    def context(match: re.Match[str]) -> str:
        inner = re.sub(r"\b[a-z][a-z_]*\b", lambda m: known[m.group(0)].label if m.group(0) in known
                       else m.group(0), match.group(1))
        return match.group(0)[0] + inner + match.group(0)[-1]

    text = _CONTEXT.sub(context, text)
    text = re.sub(r"rendered line (\d+)", r"ligne \1 du texte produit", text)
    text = re.sub(r"état ([a-z_]+)", lambda m: "état « " + m.group(1).replace("_", " ") + " »", text)
    return re.sub(r"(?<=\d)\.(?=\d\b)", ",", text)


def format_report(report, *, details: bool = False) -> str:
    """The linter's findings in French, one a line ("fichier:ligne : erreur, jargon : ..."), measures only with
    `details`, then a summary sentence."""
    lines = []
    for f in report.findings:
        if f.severity == "info" and not details:
            continue
        where = f"{f.path}:{f.line}" if f.line else f.path
        message = _PARTIAL if f.code == "PARTIAL" else _fr_text(f.message)
        lines.append(f"{where} : {SEVERITIES.get(f.severity, f.severity)}, {CHECKS.get(f.code, f.code.lower())} : "
                     f"{message}")
    errors, warnings = len(report.errors), len(report.warnings)
    summary = (f"{count_fr(report.texts)} textes relus : {errors} erreur{'s' if errors > 1 else ''}, "
               f"{warnings} avertissement{'s' if warnings > 1 else ''}.")
    low = report.lowest_score()
    if low:
        score = f"{low[1]:.1f}".replace(".", ",")
        summary += f" Lisibilité la plus basse (score Kandel-Moles) : {score}, {_fr_text(low[0])}."
    if not details:
        summary += " Le score de chaque modèle : --details."
    return "\n".join([*lines, summary])


@templates_app.command("lint")
def lint(
    paths: Annotated[list[str] | None, typer.Argument(help="fichiers à relire (par défaut : tous les modèles "
                                                            "fournis et les pages des entreprises)")] = None,
    details: Annotated[bool, typer.Option("--details", help="montrer aussi le score de lisibilité et la longueur "
                                                            "de chaque modèle")] = False,
) -> None:
    """Signaler le jargon, les phrases longues, la lisibilité, la longueur des SMS et les mentions obligatoires
    manquantes ; code de sortie 1 s'il reste une erreur."""

    missing = [p for p in paths or [] if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(2, "No such file or directory", missing[0])
    report = lint_paths(list(paths) if paths else list(shipped_templates()))
    if not paths:
        # web/ brings FastAPI and Starlette, about 0.3 s more on every `declic` command's start (measured): only
        # the page linting needs it.
        from orchestrator.cli.page_lint import lint_web_pages

        pages = lint_web_pages()
        report.findings += pages.findings
        report.scores.update(pages.scores)
        report.texts += pages.texts
    typer.echo(format_report(report, details=details))
    raise typer.Exit(0 if report.ok else 1)


@templates_app.command("preview")
def preview(
    template: Annotated[str, typer.Argument(help="canal/déclencheur (ex. email/creation)")],
    business: Annotated[str, typer.Option("--business", help="SIRET d'une entreprise de la base")],
    campaign: Annotated[str | None, typer.Option(help="campagne (son nom) : montrer exactement ce qu'elle "
        "enverrait")] = None,
) -> None:
    """Afficher le message qu'une entreprise recevrait ; avec --campaign, exactement celui qui partirait."""
    app = bootstrap()
    with app.transaction() as unit:
        row = business_by_siret(unit.conn, business.replace(" ", ""))
        campaign_row = campaign_named(unit.conn, campaign) if campaign else None
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
    try:
        if campaign_row is None:
            typer.echo(SAMPLE_NOTICE)
            message = sample_message(app.settings, app.templates, row, channel, trigger)
            header: list[str] = []
        else:
            spec = CampaignSpec.model_validate(campaign_row.spec)
            leaving = leaving_message(app.settings, app.engine, app.templates, spec, campaign_row.id, row, channel,
                                      trigger)
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
