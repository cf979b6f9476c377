"""Journey commands: `segments preview`, `ambassadors import`, `offers import`, `campaigns show` (Typer apps).

Mounted on the main `declic` app by `register`; every text a person reads is French.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from orchestrator.app.bootstrap import bootstrap
from orchestrator.core.campaign_spec import CampaignSpec, load_spec
from orchestrator.core.labels import TRIGGERS, label
from orchestrator.core.schedule import next_occurrences
from orchestrator.core.stats import fr_int
from orchestrator.core.windows import holiday_checker, next_slot, place_of, window_for
from segments.language import parse_segment
from segments.taxonomy import families
from store.journeys import ambassador_gaps, import_ambassadors, import_offers
from store.lookups import campaign_named
from store.planning import segment_counts
from templates.render import date_fr

segments_app = typer.Typer(help="Segments: qui une campagne touche.", no_args_is_help=True)
ambassadors_app = typer.Typer(help="Ambassadeurs: les pairs vers qui les messages orientent.", no_args_is_help=True)
offers_app = typer.Typer(help="Offres: diagnostics, formations courtes, accompagnements, aides.", no_args_is_help=True)
console = Console()
_CHANNEL_FR = {"email": "e-mail", "sms": "SMS", "letter": "courrier", "call": "appel", "webhook": "webhook"}
_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def register(app: typer.Typer, campaigns_app: typer.Typer) -> None:
    """Mount the journey commands on the main app and `campaigns show` on the campaigns app."""
    app.add_typer(segments_app, name="segments")
    app.add_typer(ambassadors_app, name="ambassadors")
    app.add_typer(offers_app, name="offers")
    campaigns_app.command("show")(campaigns_show)


def _load_segment(file: Path):
    """A segment file, or a campaign file (its segment within its effective territory)."""


    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        if isinstance(data, dict) and "owner" in data:
            spec = load_spec(data)
            return spec.segment, spec.effective_territory()
        seg = parse_segment(data.get("segment", data) if isinstance(data, dict) else data)
        return seg, None
    except (ValidationError, ValueError, OSError) as exc:
        console.print(f"[red]Segment refusé ({file}):[/red]\n{exc}")
        raise typer.Exit(2) from exc


@segments_app.command("preview")
def segments_preview(
    file: Path,
    by: Annotated[str, typer.Option(help="regroupement : family (famille de métiers), departement, epci, "
        "commune, region (virgules)")]
    = "family,departement",
    today: Annotated[str | None, typer.Option(help="date de référence AAAA-MM-JJ (âge, événements récents)")] = None,
) -> None:
    """Compter les entreprises qu'un segment touche, par famille de métiers et territoire."""
    seg, territory = _load_segment(file)
    keys = [k.strip() for k in by.split(",") if k.strip()]
    allowed = {"family", "departement", "epci", "commune", "region"}
    if unknown := [k for k in keys if k not in allowed]:
        raise typer.BadParameter(f"regroupements inconnus: {', '.join(unknown)}", param_hint="--by")
    app = bootstrap()
    day = dt.date.fromisoformat(today) if today else app.today()
    with app.transaction() as unit:
        rows = segment_counts(unit.conn, seg, today=day, territory=territory, by=tuple(keys))
    labels = {"family": "Famille de métiers", "departement": "Département", "epci": "EPCI", "commune": "Commune",
              "region": "Région"}
    table = Table(title=f"Segment {file.name}")
    for k in keys:
        table.add_column(labels[k])
    table.add_column("Entreprises", justify="right")
    total = 0
    for row in rows:
        *group, count = row
        total += count
        cells = [families()[g].label if k == "family" and g in families() else (g or "inconnu")
                 for k, g in zip(keys, group, strict=True)]
        table.add_row(*cells, fr_int(count))
    console.print(table)
    console.print(f"Total: {fr_int(total)} entreprises")


def _print_rejects(what: str, imported: int, rejects) -> None:
    console.print(f"{what}: {imported} importé(s), {len(rejects)} ligne(s) refusée(s)")
    for r in rejects:
        console.print(f"  ligne {r.line}, champ {r.field}: {r.reason}")


@ambassadors_app.command("import")
def ambassadors_import(file: Path) -> None:
    """Importer (ou mettre à jour) les ambassadeurs d'un fichier CSV."""
    app = bootstrap()
    imported, rejects = import_ambassadors(app.engine, file, now=app.now())
    _print_rejects("Ambassadeurs", imported, rejects)
    if rejects and not imported:
        raise typer.Exit(2)


@offers_app.command("import")
def offers_import(file: Path) -> None:
    """Importer (ou mettre à jour) les offres d'un fichier CSV."""
    app = bootstrap()
    imported, rejects = import_offers(app.engine, file, now=app.now())
    _print_rejects("Offres", imported, rejects)
    if rejects and not imported:
        raise typer.Exit(2)


def _when(at: dt.datetime, tz: str) -> str:
    local = at.astimezone(ZoneInfo(tz))

    return f"{_DAYS[local.weekday()]} {date_fr(local.date())} à {local:%H:%M}"


def _delay_fr(delay: dt.timedelta) -> str:
    """A step's delay as a person says it: "aussitôt", "après 2 jours", "après 1 jour et 6 heures"."""
    days, hours = delay.days, delay.seconds // 3600
    if not days and not hours:
        return "aussitôt"
    parts = [f"{days} jour{'s' if days > 1 else ''}"] if days else []
    parts += [f"{hours} heure{'s' if hours > 1 else ''}"] if hours else []
    return "après " + " et ".join(parts)


def _print_gaps(gaps: list[tuple]) -> None:
    """Where no ambassador fitted: the campaign's contact stood in (the places to recruit one)."""
    total = sum(r[-1] for r in gaps)
    if not total:
        return
    worst = ", ".join(f"{families()[f].label if f in families() else 'autre'} ({d or '?'}) : {n}"
                      for _, f, d, n in gaps[:5])
    console.print(f"Sans ambassadeur : {total} inscription(s), le contact de la campagne a été proposé. "
                  f"À recruter d'abord : {worst}", soft_wrap=True)


def campaigns_show(
    name: str,
    now: Annotated[str | None, typer.Option(help="instant de référence ISO (horloge contrôlée)")] = None,
) -> None:
    """Afficher une campagne: statut, version, étapes et ses cinq prochaines occurrences avec leurs créneaux."""
    app = bootstrap()
    with app.transaction() as unit:
        row = campaign_named(unit.conn, name)
        gaps = ambassador_gaps(unit.conn, row.id) if row is not None else []
    if row is None:
        console.print(f"[red]Campagne inconnue: {name}[/red]")
        raise typer.Exit(1)
    spec = CampaignSpec.model_validate(row.spec)
    status = label("campaign_status", row.status)
    console.print(f"[bold]{spec.title or spec.name}[/bold] ({spec.name}), {status}, version {row.version}")
    console.print(f"Porteur: {spec.owner.name}. Fuseau: {spec.timezone()}.")
    if spec.triggers:
        console.print(f"Déclencheurs : {', '.join(label('trigger', t) for t in spec.triggers)}")
    if spec.holdout:
        console.print(f"Groupe témoin: {spec.holdout:g} % (inscrits, jamais contactés)")
    if spec.variants:
        console.print("Variantes: " + ", ".join(f"{v.name} (poids {v.weight})" for v in spec.variants))
    _print_gaps(gaps)
    for i, step in enumerate(spec.steps, start=1):
        cond = {"no_click": "si pas de clic", "clicked": "si clic", "no_conversion": "si pas d'inscription"}
        extra = f", {cond[step.condition]}" if step.condition else ""
        channels = " puis ".join(_CHANNEL_FR.get(c, c) for c in step.channels())
        model = label("trigger", step.template) if step.template in TRIGGERS else step.template
        console.print(f"Étape {i} : {channels}, {_delay_fr(step.delay_td)}, message « {model} »{extra}",
                      soft_wrap=True)
    schedule = spec.schedule
    if schedule is None:
        console.print("Pas de calendrier: la campagne part sur déclencheur seulement.")
        return
    tz = spec.timezone()
    after = dt.datetime.fromisoformat(now) if now else app.now()
    if after.tzinfo is None:
        after = after.replace(tzinfo=dt.UTC)
    upcoming = next_occurrences(schedule.start, schedule.rrule, tz, after, 5)
    if not upcoming:
        console.print("Aucune occurrence à venir.")
        return
    fams = spec.segment.families or [None]
    deps = spec.effective_territory().departements or [None]
    place = place_of(deps[0])
    console.print("Cinq prochaines occurrences, et le premier envoi réel par famille de métiers "
                  "(créneaux du métier, week-ends et jours fériés du lieu):", soft_wrap=True)
    step, zone = spec.steps[0], app.zone
    for at in upcoming:
        if spec.ends_on and at.astimezone(zone).date() > spec.ends_on:
            break
        slots = []
        for family in fams:
            window = window_for(family, weekends=spec.timing.weekends, holidays_allowed=spec.timing.holidays)
            slot = next_slot(at + step.delay_td, window, place.timezone, holiday_checker(place.subdivision))
            trade = families()[family].label if family else "toutes familles"
            slots.append(f"{trade} : {_when(slot, place.timezone)}")
        console.print(f"- {_when(at, tz)} -> " + "; ".join(slots), soft_wrap=True)
